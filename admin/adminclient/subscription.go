package adminclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/p2prelay/p2prelay/admin/adminapi"
	"github.com/p2prelay/p2prelay/protocol"
)

// Subscription is a live admin stream that reconnects by itself. Read
// Updates until it is closed; the caller must call Close.
type Subscription struct {
	c       *Client
	updates chan adminapi.Update
	cancel  context.CancelFunc
	done    chan struct{}
	retry   chan struct{} // cuts the wait before the next attempt short

	mu       sync.Mutex // guards conn and watching
	conn     *conn
	watching map[string]struct{} // watched again on every new connection
}

// Subscribe starts a stream. Connection problems are reported as Updates
// (adminapi.StatusDown, adminapi.StatusUnauthorized), never as an error: the subscription
// keeps retrying, backing off from RetryMin to RetryMax, until Close or
// until ctx ends.
//
// The relay sends the next message only after the last one was taken from
// Updates, so a slow reader slows only its own stream: the relay resyncs it
// with a fresh snapshot when it falls too far behind.
func (c *Client) Subscribe(ctx context.Context) *Subscription {
	ctx, cancel := context.WithCancel(ctx)
	sub := &Subscription{c: c, updates: make(chan adminapi.Update), cancel: cancel, done: make(chan struct{}),
		retry: make(chan struct{}, 1), watching: map[string]struct{}{}}
	go sub.run(ctx)
	return sub
}

// Updates delivers the stream. It is closed after Close.
func (sub *Subscription) Updates() <-chan adminapi.Update { return sub.updates }

// Close stops the subscription and waits for it to end.
func (sub *Subscription) Close() {
	sub.cancel()
	<-sub.done
}

// Kick disconnects a device over the subscription's connection.
func (sub *Subscription) Kick(ctx context.Context, id string) error {
	return sub.command(ctx, adminapi.CommandKick, id)
}

// Unpair breaks the pair device id is in, over the subscription's
// connection.
func (sub *Subscription) Unpair(ctx context.Context, id string) error {
	return sub.command(ctx, adminapi.CommandUnpair, id)
}

// Watch asks for device id's detail (once a second) and traffic, which then
// come as Updates with Detail and Traffic set. The watch lasts until
// Unwatch, across reconnections; a device that is not connected is
// watched from when it connects. When the subscription is not connected
// at the moment, the watch starts with the next connection.
func (sub *Subscription) Watch(ctx context.Context, id string) error {
	sub.mu.Lock()
	sub.watching[id] = struct{}{}
	sub.mu.Unlock()
	err := sub.command(ctx, adminapi.CommandWatch, id)
	if errors.Is(err, ErrUnreachable) {
		return nil // watched again on the next connection
	}
	if err != nil {
		sub.mu.Lock()
		delete(sub.watching, id)
		sub.mu.Unlock()
	}
	return err
}

// Unwatch stops watching device id.
func (sub *Subscription) Unwatch(ctx context.Context, id string) error {
	sub.mu.Lock()
	delete(sub.watching, id)
	sub.mu.Unlock()
	err := sub.command(ctx, adminapi.CommandUnwatch, id)
	if errors.Is(err, ErrUnreachable) {
		return nil // the connection, and its watches, are gone
	}
	return err
}

// SetToken replaces the admin token (Client.SetToken) and tries again at
// once if the subscription is waiting to.
func (sub *Subscription) SetToken(tok string) {
	sub.c.SetToken(tok)
	select {
	case sub.retry <- struct{}{}:
	default:
	}
}

// rewatch watches again, on a new connection, what the subscription
// watches.
func (sub *Subscription) rewatch(ctx context.Context, cn *conn) {
	sub.mu.Lock()
	ids := make([]string, 0, len(sub.watching))
	for id := range sub.watching {
		ids = append(ids, id)
	}
	sub.mu.Unlock()
	for _, id := range ids {
		if err := cn.command(ctx, sub.c.cfg.Timeout, adminapi.CommandWatch, id); err != nil {
			sub.c.log.Debug("watching again failed", "id", id, "err", err)
		}
	}
}

func (sub *Subscription) command(ctx context.Context, name, id string) error {
	sub.mu.Lock()
	cn := sub.conn
	sub.mu.Unlock()
	if cn == nil {
		return fmt.Errorf("%w: not connected", ErrUnreachable)
	}
	return cn.command(ctx, sub.c.cfg.Timeout, name, id)
}

func (sub *Subscription) run(ctx context.Context) {
	defer close(sub.done)
	defer close(sub.updates)
	delay := sub.c.cfg.RetryMin
	for {
		if !sub.deliver(ctx, adminapi.Update{Status: adminapi.StatusConnecting}) {
			return
		}
		live, err := sub.session(ctx)
		if ctx.Err() != nil {
			return
		}
		st := adminapi.StatusDown
		if protocol.CodeOf(err) == protocol.CodeUnauthorized {
			st = adminapi.StatusUnauthorized
		}
		sub.c.log.Debug("admin stream down", "status", st.String(), "err", err)
		if !sub.deliver(ctx, adminapi.Update{Status: st, Err: err}) {
			return
		}
		if live {
			delay = sub.c.cfg.RetryMin
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-sub.retry:
			t.Stop()
			delay = sub.c.cfg.RetryMin
			continue
		case <-t.C:
		}
		delay = min(2*delay, sub.c.cfg.RetryMax)
	}
}

// deliver hands u to the reader; false when ctx ended first.
func (sub *Subscription) deliver(ctx context.Context, u adminapi.Update) bool {
	select {
	case sub.updates <- u:
		return true
	case <-ctx.Done():
		return false
	}
}

// session runs one connection until it drops. live says whether it got as
// far as a snapshot.
func (sub *Subscription) session(ctx context.Context) (live bool, err error) {
	cn, err := sub.c.dial(ctx)
	if err != nil {
		return false, err
	}
	defer func() {
		sub.mu.Lock()
		sub.conn = nil
		sub.mu.Unlock()
		cn.close()
	}()
	sub.mu.Lock()
	sub.conn = cn
	sub.mu.Unlock()
	go sub.rewatch(ctx, cn)

	var seq uint64
	synced := false
	for {
		var in inbound
		select {
		case in = <-cn.events:
		case <-ctx.Done():
			return live, ctx.Err()
		}
		switch in.event {
		case "disconnect":
			return live, in.err
		case adminapi.EventSnapshot:
			snap, err := decodeSnapshot(in.payload)
			if err != nil {
				return live, err
			}
			seq, synced, live = snap.Seq, true, true
			if !sub.deliver(ctx, adminapi.Update{Status: adminapi.StatusLive, Snapshot: snap}) {
				return live, ctx.Err()
			}
		case adminapi.EventDeltas:
			ds, err := decodeDeltas(in.payload)
			if err != nil {
				return live, err
			}
			var ok []adminapi.Delta
			was := synced
			ok, seq, synced = inOrder(ds, seq, synced)
			if was && !synced {
				// Lost deltas: ask for a snapshot, and drop everything until it comes.
				sub.c.log.Debug("gap in the admin stream; asking for a resync", "after", seq)
				_ = cn.s.Emit(adminapi.CommandResync)
			}
			if len(ok) > 0 && !sub.deliver(ctx, adminapi.Update{Status: adminapi.StatusLive, Deltas: ok}) {
				return live, ctx.Err()
			}
		case adminapi.EventDetail:
			var det adminapi.DeviceDetail
			if err := decodeObject(in.payload, &det, "detail"); err != nil {
				return live, err
			}
			if !sub.deliver(ctx, adminapi.Update{Status: adminapi.StatusLive, Detail: &det}) {
				return live, ctx.Err()
			}
		case adminapi.EventTraffic:
			var batch adminapi.TrafficBatch
			if err := decodeObject(in.payload, &batch, "traffic"); err != nil {
				return live, err
			}
			if !sub.deliver(ctx, adminapi.Update{Status: adminapi.StatusLive, Traffic: &batch}) {
				return live, ctx.Err()
			}
		default:
			continue
		}
		if in.ack != nil {
			in.ack(nil, nil)
		}
	}
}

// inOrder keeps the deltas that continue the sequence after seq, dropping
// repeats. When a delta skips a number it stops there and reports the
// stream out of sync; while out of sync everything is dropped. It filters
// ds in place.
func inOrder(ds []adminapi.Delta, seq uint64, synced bool) ([]adminapi.Delta, uint64, bool) {
	if !synced {
		return nil, seq, false
	}
	out := ds[:0]
	for _, d := range ds {
		switch {
		case d.Seq <= seq:
			continue
		case d.Seq == seq+1:
			out = append(out, d)
			seq = d.Seq
		default:
			return out, seq, false
		}
	}
	return out, seq, true
}

// decodeSnapshot decodes a snapshot payload.
func decodeSnapshot(raw json.RawMessage) (*adminapi.Snapshot, error) {
	var snap adminapi.Snapshot
	if err := decodeObject(raw, &snap, "snapshot"); err != nil {
		return nil, err
	}
	return &snap, nil
}

// decodeObject decodes the JSON object of a stream event's payload into v.
func decodeObject(raw json.RawMessage, v any, what string) error {
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return fmt.Errorf("admin: bad %s from the relay: not a JSON object", what)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("admin: bad %s from the relay: %w", what, err)
	}
	return nil
}

// decodeDeltas decodes a deltas payload.
func decodeDeltas(raw json.RawMessage) ([]adminapi.Delta, error) {
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) == 0 || t[0] != '[' {
		return nil, errors.New("admin: bad deltas from the relay: not an array")
	}
	var ds []adminapi.Delta
	if err := json.Unmarshal(raw, &ds); err != nil {
		return nil, fmt.Errorf("admin: bad deltas from the relay: %w", err)
	}
	return ds, nil
}

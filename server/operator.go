package server

import (
	"context"
	"sort"

	"github.com/p2prelay/p2prelay/protocol"
)

// DeviceInfo is a device with its relay counters.
type DeviceInfo struct {
	Device
	Available bool   `json:"available"`
	Messages  uint64 `json:"messages"` // events this device relayed since it connected
}

// PairInfo is a pair with its relay counters.
type PairInfo struct {
	Pair
	Messages uint64 `json:"messages"` // events relayed between the two since they paired
}

// Devices lists every connected device, sorted by id.
func (r *Relay) Devices() []DeviceInfo {
	devs := r.store.Devices()
	out := make([]DeviceInfo, 0, len(devs))
	for _, d := range devs {
		info := DeviceInfo{Device: d, Available: d.Available()}
		if dv := r.device(d.ID); dv != nil {
			if s := dv.cur.Load(); s != nil {
				info.Transport = s.conn.Transport()
			}
			info.Messages = dv.sent.Load()
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// LocalDevices returns how many devices this relay node holds (all of
// them, without other nodes), counting those it is handing over to the
// node they came back on.
func (r *Relay) LocalDevices() int {
	n := int(r.handing.Load())
	r.devices.Range(func(_, _ any) bool { n++; return true })
	return n
}

// DeviceIDs lists the ids of every connected device, sorted.
func (r *Relay) DeviceIDs() []string {
	devs := r.store.Devices()
	ids := make([]string, len(devs))
	for i, d := range devs {
		ids[i] = d.ID
	}
	sort.Strings(ids)
	return ids
}

// SocketID returns the connection id holding a device id, the Go
// counterpart of the original server manager's lookup.
func (r *Relay) SocketID(deviceID string) (string, bool) {
	d, ok := r.store.Get(deviceID)
	if !ok {
		return "", false
	}
	return d.ConnID, true
}

// Pairs lists every live pair, sorted by the asking side's id.
func (r *Relay) Pairs() []PairInfo {
	ps := r.store.Pairs()
	out := make([]PairInfo, 0, len(ps))
	for _, p := range ps {
		var n uint64
		for _, id := range [...]string{p.A, p.B} {
			if d := r.device(id); d != nil {
				n += d.pairSent.Load()
			}
		}
		out = append(out, PairInfo{Pair: p, Messages: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].A < out[j].A })
	return out
}

// Kick disconnects a device, or ends one that is away; its peer is told
// the pair ended.
func (r *Relay) Kick(id string) error {
	d := r.device(id)
	if d == nil && r.clustered() {
		if node, ok := r.nodeOf(id); ok && node != r.cfg.Node {
			r.post(node, Envelope{Kind: EnvKick, To: id})
			return nil
		}
	}
	if d == nil {
		return protocol.Errorf(protocol.CodeOffline, "device %q is not connected", id)
	}
	r.order.Lock()
	rec, ok := r.store.Get(id)
	var td *Teardown
	if ok {
		td = r.removeLocked(d, rec.ConnID, "kicked", ReasonKicked)
	}
	r.order.Unlock()
	s := d.cur.Load()
	r.emit(d, protocol.EventServerError, protocol.Errorf(protocol.CodeKicked, "disconnected by an operator").Error())
	r.endDevice(d, td, "kicked")
	if s != nil {
		s.conn.Disconnect()
	}
	return nil
}

// Unpair breaks the pair device id is in; both sides are told.
func (r *Relay) Unpair(id string) (Pair, error) {
	p, ok := r.unpair(id, ReasonBroken)
	if !ok {
		return Pair{}, protocol.Errorf(protocol.CodeNotPaired, "device %q is not paired", id)
	}
	r.unpaired(p, ReasonBroken)
	return p, nil
}

// Shutdown stops the relay: new devices are refused, every paired device is
// told its pair ended, and every connection's transport is closed, as a
// network drop would close it, so that socket.io clients reconnect by
// themselves (to this relay once it is back, or to another). It returns
// when done or when ctx ends.
func (r *Relay) Shutdown(ctx context.Context) error {
	r.closing.Store(true)
	if r.clustered() {
		return r.leaveCluster(ctx)
	}
	for _, p := range r.store.Pairs() {
		if _, ok := r.unpair(p.A, ReasonShutdown); !ok {
			continue
		}
		for _, id := range [...]string{p.A, p.B} {
			r.notify(id, protocol.EventDisconnect, p.Other(id))
		}
	}
	return r.closeAll(ctx, "the relay is shutting down", nil)
}

// closeAll tells every device here SHUTTING_DOWN with msg and closes its
// transport, after before (when set) for each.
func (r *Relay) closeAll(ctx context.Context, msg string, before func(*Session)) error {
	var all []*device
	r.devices.Range(func(_, v any) bool {
		all = append(all, v.(*device))
		return true
	})
	for _, d := range all {
		if err := ctx.Err(); err != nil {
			return err
		}
		s := d.cur.Load()
		if s == nil {
			continue
		}
		r.emit(d, protocol.EventServerError, protocol.Errorf(protocol.CodeShuttingDown, "%s", msg).Error())
		if before != nil {
			before(s)
		}
		s.conn.Close()
	}
	return nil
}

// leaveCluster is Shutdown for a node of a cluster: its paired devices
// are kept away, their pairs standing, and their transports closed; they
// reconnect, through the load balancer, to another node, where they are
// back in their pairs within the resume window, with what this node held
// for them handed over (it keeps serving the handover until the process
// ends).
func (r *Relay) leaveCluster(ctx context.Context) error {
	return r.closeAll(ctx, "this relay node is shutting down: connect again", func(s *Session) { r.drop(s, "node shutting down") })
}

// Store returns the relay's state store.
func (r *Relay) Store() Store { return r.store }

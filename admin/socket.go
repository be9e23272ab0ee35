package admin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/p2prelay/p2prelay/admin/adminapi"
	"github.com/p2prelay/p2prelay/protocol"
)

// Mount serves the admin stream on a socket.io namespace (p2pd uses
// "/admin"): a connection must give the admin token in its handshake auth
// ({token}); it then receives a snapshot and ordered deltas, and may send
// the kick, unpair and resync commands with an ack. The commands are also
// served over HTTP (CommandHandler).
func (h *Hub) Mount(nsp socket.Namespace) error {
	nsp.Use(h.authSocket)
	if err := nsp.On("connection", func(args ...any) {
		if s, ok := args[0].(*socket.Socket); ok {
			h.serveSocket(s)
		}
	}); err != nil {
		return fmt.Errorf("admin: listen for connections: %w", err)
	}
	return nil
}

// authSocket is the namespace middleware: a wrong or missing token is
// refused with an UNAUTHORIZED connect error, and every attempt from an
// address that presented too many wrong tokens with RATE_LIMITED.
func (h *Hub) authSocket(s *socket.Socket, next func(*socket.ExtendedError)) {
	tok, _ := s.Handshake().Auth[adminapi.AuthToken].(string)
	if err := h.authenticate(s.Handshake().Address, surfaceSocket, tok, tok != ""); err != nil {
		next(socket.NewExtendedError(err.Error.Error(), err.ConnectErrorData()))
		return
	}
	next(nil)
}

// serveSocket runs one admin connection: its stream and its commands.
func (h *Hub) serveSocket(s *socket.Socket) {
	by := s.Handshake().Address
	ctx, cancel := context.WithCancel(context.Background())
	sub := h.subscribe()
	_ = s.On(adminapi.CommandKick, func(args ...any) {
		id, ack := commandArgs(args)
		h.answer(ack, h.withID(id, func(id string) error { return h.Kick(id, by) }))
	})
	_ = s.On(adminapi.CommandUnpair, func(args ...any) {
		id, ack := commandArgs(args)
		h.answer(ack, h.withID(id, func(id string) error { return h.Unpair(id, by) }))
	})
	_ = s.On(adminapi.CommandResync, func(args ...any) {
		_, ack := commandArgs(args)
		h.requestResync(sub)
		h.answer(ack, nil)
	})
	_ = s.On(adminapi.CommandWatch, func(args ...any) {
		id, ack := commandArgs(args)
		h.answer(ack, h.withID(id, func(id string) error { return h.watch(sub, id) }))
	})
	_ = s.On(adminapi.CommandUnwatch, func(args ...any) {
		id, ack := commandArgs(args)
		h.answer(ack, h.withID(id, func(id string) error {
			h.unwatch(sub, id)
			return nil
		}))
	})
	_ = s.On("disconnect", func(...any) { cancel() })
	if !s.Connected() {
		cancel()
	}
	h.log.Info("admin connected", "addr", by)
	go func() {
		defer h.unsubscribe(sub)
		err := h.stream(ctx, sub, socketSink{s: s, timeout: h.cfg.AckTimeout})
		switch {
		case errors.Is(err, context.Canceled):
			h.log.Info("admin disconnected", "addr", by)
		case errors.Is(err, errAckTimeout):
			h.log.Warn("admin subscriber stopped answering; disconnecting it", "addr", by, "timeout", h.cfg.AckTimeout)
			s.Disconnect(true)
		default:
			s.Disconnect(true)
		}
	}()
}

// withID validates a command's id argument before running it.
func (h *Hub) withID(v any, run func(string) error) error {
	id, err := protocol.ParseTarget(v)
	if err != nil {
		return err
	}
	return run(id)
}

// answer acks a command: {"ok": true} or {"error": {"code", "message"}}.
func (h *Hub) answer(ack socket.Ack, err error) {
	if ack == nil {
		return
	}
	if err == nil {
		ack([]any{map[string]any{"ok": true}}, nil)
		return
	}
	ack([]any{protocol.AsError(err).AckPayload()}, nil)
}

// commandArgs splits an event's arguments (a command's, or a stream
// message's) into its first argument and its ack (nil when the sender gave
// none).
func commandArgs(args []any) (any, socket.Ack) {
	args, ack := protocol.SplitAck(args)
	if len(args) == 0 {
		return nil, ack
	}
	return args[0], ack
}

var errAckTimeout = errors.New("admin: subscriber did not acknowledge in time")

// socketSink sends a stream over a socket.io socket, one message at a
// time: the next goes only once the subscriber acknowledged the last, so
// the socket's own buffers never hold more than one message.
type socketSink struct {
	s       *socket.Socket
	timeout time.Duration
}

func (k socketSink) snapshot(ctx context.Context, snap *adminapi.Snapshot) error {
	return k.emit(ctx, adminapi.EventSnapshot, snap)
}

func (k socketSink) deltas(ctx context.Context, ds []adminapi.Delta) error {
	return k.emit(ctx, adminapi.EventDeltas, ds)
}

func (k socketSink) detail(ctx context.Context, det *adminapi.DeviceDetail) error {
	return k.emit(ctx, adminapi.EventDetail, det)
}

func (k socketSink) traffic(ctx context.Context, batch *adminapi.TrafficBatch) error {
	return k.emit(ctx, adminapi.EventTraffic, batch)
}

func (k socketSink) emit(ctx context.Context, event string, payload any) error {
	done := make(chan struct{}, 1)
	if err := k.s.Emit(event, payload, socket.Ack(func([]any, error) {
		select {
		case done <- struct{}{}:
		default:
		}
	})); err != nil {
		return fmt.Errorf("admin: emit %s: %w", event, err)
	}
	t := time.NewTimer(k.timeout)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
		return errAckTimeout
	case <-ctx.Done():
		return ctx.Err()
	}
}

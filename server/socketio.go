package server

import (
	"fmt"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/p2prelay/p2prelay/protocol"
)

// Attach installs a relay on the default namespace of a socket.io server the
// caller already has: the Go counterpart of the original p2pServerPlugin(io).
// The server should allow Engine.IO 3 (SetAllowEIO3) so that
// socket.io-client 2.x devices can connect; see NewSocketServer.
//
// Attach adds a middleware that refuses connections without a valid id, and
// handles every event of the default namespace; the caller should not add
// its own handlers there. The caller owns io and closes it; call
// Relay.Shutdown first to tell paired devices.
func Attach(io *socket.Server, cfg Config) (*Relay, error) {
	r, err := New(cfg)
	if err != nil {
		return nil, err
	}
	nsp := io.Sockets()
	nsp.Use(r.admitSocket)
	if err := nsp.On("connection", func(args ...any) {
		if s, ok := args[0].(*socket.Socket); ok {
			r.serveSocket(s)
		}
	}); err != nil {
		return nil, fmt.Errorf("server: listen for connections: %w", err)
	}
	return r, nil
}

// NewSocketServerOptions returns socket.io server options that accept both
// client generations: Engine.IO 3 (socket.io-client 2.x) and 4, over
// polling and websocket.
func NewSocketServerOptions() *socket.ServerOptions {
	opts := socket.DefaultServerOptions()
	opts.SetAllowEIO3(true)
	opts.SetServeClient(false)
	return opts
}

// connInfoOf reads the device id and generation from a socket's handshake.
func connInfoOf(s *socket.Socket) (ConnInfo, error) {
	query := s.Request().Query()
	id, gen, err := protocol.IDFromQuery(func(key string) (string, bool) {
		vals, ok := query.Gets(key)
		if !ok || len(vals) == 0 {
			return "", false
		}
		for _, v := range vals[1:] {
			if v != vals[0] {
				// Disagreeing repeats make the id ambiguous; an empty value
				// fails validation with a clear message.
				return "", true
			}
		}
		return vals[0], true
	})
	if err != nil {
		return ConnInfo{}, err
	}
	return ConnInfo{
		DeviceID: id,
		ConnID:   string(s.Id()),
		Gen:      gen,
		Address:  s.Conn().RemoteAddress(),
		EngineIO: s.Conn().Protocol(),
	}, nil
}

// admitSocket is the namespace middleware: it refuses, with a connect
// error, a device without a valid id or one the relay will not admit.
func (r *Relay) admitSocket(s *socket.Socket, next func(*socket.ExtendedError)) {
	info, err := connInfoOf(s)
	if err == nil {
		err = r.Admit(info)
	}
	if err != nil {
		pe := asProtocolError(err)
		r.stats.refusal(pe.Code)
		r.log.Info("connection refused", "addr", s.Conn().RemoteAddress(), "code", string(pe.Code), "reason", pe.Message)
		next(socket.NewExtendedError(pe.Error(), pe.ConnectErrorData()))
		return
	}
	s.SetData(info)
	next(nil)
}

// serveSocket joins an admitted socket to the relay and routes its events.
func (r *Relay) serveSocket(s *socket.Socket) {
	info, ok := s.Data().(ConnInfo)
	if !ok {
		s.Disconnect(true)
		return
	}
	c := sioConn{s}
	sess, err := r.Join(info, c)
	if err != nil {
		c.Emit(protocol.EventServerError, asProtocolError(err).Error())
		s.Disconnect(true)
		return
	}
	s.OnAny(func(args ...any) {
		event, rest, ack := splitEvent(args)
		r.Handle(sess, event, rest, ack)
	})
	_ = s.On("disconnect", func(args ...any) {
		reason := "disconnect"
		if len(args) > 0 {
			if s, ok := args[0].(string); ok {
				reason = s
			}
		}
		r.Leave(sess, reason)
	})
	if !s.Connected() {
		// The connection closed before the handlers were in place.
		r.Leave(sess, "closed during connect")
	}
}

// splitEvent takes an incoming packet's arguments apart: the event name,
// its arguments, and the ack callback when the device sent one.
func splitEvent(args []any) (string, []any, Ack) {
	if len(args) == 0 {
		return "", nil, nil
	}
	var event string
	switch v := args[0].(type) {
	case string:
		event = v
	default:
		event = fmt.Sprint(v)
	}
	rest := args[1:]
	var ack Ack
	if n := len(rest); n > 0 {
		if fn, ok := rest[n-1].(socket.Ack); ok {
			rest = rest[:n-1]
			ack = func(vals ...any) { fn(vals, nil) }
		}
	}
	return event, rest, ack
}

// sioConn is a Conn over a socket.io server socket.
type sioConn struct{ s *socket.Socket }

func (c sioConn) Emit(event string, args ...any) { _ = c.s.Emit(event, args...) }

func (c sioConn) EmitWithAck(event string, args []any, ack func([]any)) {
	all := make([]any, 0, len(args)+1)
	all = append(all, args...)
	all = append(all, socket.Ack(func(vals []any, err error) {
		if err == nil {
			ack(vals)
		}
	}))
	_ = c.s.Emit(event, all...)
}

func (c sioConn) Disconnect() { c.s.Disconnect(true) }

func (c sioConn) Transport() string {
	if t := c.s.Conn().Transport(); t != nil {
		return t.Name()
	}
	return ""
}

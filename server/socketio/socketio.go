// Package socketio binds the relay core (package server) to a socket.io
// server of the zishang520/socket.io v3 library: the namespace middleware
// that joins devices, the parser that keeps relayed arguments raw, the
// websocket transport and listeners that write without waiting, the gate
// that closes a connection race of the library, and Service, which serves
// it all over HTTP. Everything that works around the library's internals
// lives here, so the core stays free of it.
package socketio

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	engine "github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server"
)

// Attach installs a relay on the default namespace of a socket.io server the
// caller already has: the Go counterpart of the original p2pServerPlugin(io).
// Build io with NewSocketServer: it allows Engine.IO 3, so that
// socket.io-client 2.x devices can connect, and closes a connection race of
// the socket.io library that a plain socket.NewServer leaves open.
//
// Attach adds a middleware that refuses connections without a valid id, and
// handles every event of the default namespace; the caller should not add
// its own handlers there. The caller owns io and closes it; call
// Relay.Shutdown first to tell paired devices.
func Attach(io *socket.Server, cfg server.Config) (*server.Relay, error) {
	r, err := server.New(cfg)
	if err != nil {
		return nil, err
	}
	io.Sockets().Use(func(s *socket.Socket, next func(*socket.ExtendedError)) { admit(r, s, next) })
	return r, nil
}

// NewSocketServerOptions returns socket.io server options that accept both
// client generations: Engine.IO 3 (socket.io-client 2.x) and 4, over
// polling and websocket, with the relay's parser (NewParser) and its
// transports, which bound what a connection may send before it is
// admitted (see NewService). JSONP polling, which no device uses (clients
// fall back to it only in browsers without XMLHttpRequest), is refused.
func NewSocketServerOptions() *socket.ServerOptions {
	opts := socket.DefaultServerOptions()
	opts.SetAllowEIO3(true)
	opts.SetServeClient(false)
	opts.SetParser(NewParser())
	g := newConnectGate()
	opts.SetTransports(types.NewSet[socket.TransportCtor](pollingCtor{gate: g}, websocketCtor{gate: g}))
	opts.SetConnectTimeout(DefaultJoinTimeout)
	allowRequest(opts, func(ctx *types.HttpContext) error {
		if ctx.Query().Has("j") {
			return errors.New("JSONP polling is not served")
		}
		return nil
	})
	return opts
}

// allowRequest adds a check of handshakes to opts, after any it has.
func allowRequest(opts *socket.ServerOptions, check func(*types.HttpContext) error) {
	prev := opts.AllowRequest()
	opts.SetAllowRequest(func(ctx *types.HttpContext) error {
		if prev != nil {
			if err := prev(ctx); err != nil {
				return err
			}
		}
		return check(ctx)
	})
}

// connInfoOf reads the device id and generation from a socket's handshake.
func connInfoOf(s *socket.Socket) (server.ConnInfo, error) {
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
		return server.ConnInfo{}, err
	}
	return server.ConnInfo{
		DeviceID: id,
		ConnID:   string(s.Id()),
		Gen:      gen,
		Address:  s.Conn().RemoteAddress(),
		EngineIO: s.Conn().Protocol(),
		Token:    tokenOf(s),
	}, nil
}

// tokenOf returns the device token from the handshake auth {token} or,
// for clients that cannot send auth (socket.io-client 2.x), the query.
func tokenOf(s *socket.Socket) string {
	if auth := s.Handshake().Auth; auth != nil {
		if t, ok := auth[protocol.QueryToken].(string); ok && t != "" {
			return t
		}
	}
	t, _ := s.Request().Query().GetFirst(protocol.QueryToken)
	return t
}

// admit is the namespace middleware. It refuses, with a connect error, a
// device without a valid id or one the relay will not take, and otherwise
// joins the device to the relay before socket.io confirms the connection:
// once a device sees "connect", others can pair with it. Joining may wait
// for the holder of an id in use to answer, so it runs on a goroutine of
// its own; the device sends nothing on the namespace before it is
// confirmed.
func admit(r *server.Relay, s *socket.Socket, next func(*socket.ExtendedError)) {
	info, err := connInfoOf(s)
	if err != nil {
		pe := r.RefuseConn(s.Conn().RemoteAddress(), err)
		s.Conn().Emit(eventRefused)
		next(socket.NewExtendedError(pe.Error(), pe.ConnectErrorData()))
		return
	}
	conn := newSioConn(s)
	go func() {
		sess, err := r.Join(info, conn)
		joined(r, s, conn, sess, err, next)
	}()
}

// joined finishes admit once the relay has answered.
func joined(r *server.Relay, s *socket.Socket, conn *sioConn, sess *server.Session, err error, next func(*socket.ExtendedError)) {
	if err != nil {
		pe := protocol.AsError(err)
		s.Conn().Emit(eventRefused)
		next(socket.NewExtendedError(pe.Error(), pe.ConnectErrorData()))
		return
	}
	handle := func(args ...any) {
		event, rest, ack := splitEvent(args)
		r.Handle(sess, event, rest, ack)
	}
	s.OnAny(handle)
	if conn.direct != nil {
		// Before the device is told it joined, so before it sends.
		conn.direct.joined(handle)
	}
	// The library queues a device's packets for its socket and handles
	// the end of the transport at once: a DISCONNECT that the device sends
	// just before it closes (as socket.disconnect() does) reaches the
	// socket after the close and is lost, and the relay would take an
	// explicit disconnect for a network drop. The gate (NewSocketServer)
	// sees the packet first, in order, and says so.
	var bye atomic.Bool
	_ = s.Conn().Once(eventBye, func(...any) { bye.Store(true) })
	leave := func(args ...any) {
		reason := "disconnect"
		if len(args) > 0 {
			if s, ok := args[0].(string); ok {
				reason = s
			}
		}
		if bye.Load() {
			reason = "client namespace disconnect"
		}
		conn.acks.clear()
		r.Leave(sess, reason)
	}
	_ = s.On("disconnect", leave)
	_ = s.Conn().On("upgrade", func(...any) { r.TransportChanged(sess) })
	// If the transport closes before socket.io completes the connection,
	// no "disconnect" comes: the engine's close still ends the session.
	// A close that came before this listener did (the engine marks the
	// connection closed before it says so) would leave the id taken.
	_ = s.Conn().Once("close", leave)
	if s.Conn().ReadyState() == "closed" {
		leave("transport close")
	}
	// Admitted before the device is told: what it sends once it knows
	// is no longer held to the limits before admission (guard.go).
	s.Conn().Emit(eventAdmitted)
	next(nil)
}

// isRootDisconnect reports whether engine data is a socket.io DISCONNECT
// packet for the default namespace: "1", or "1/," with the namespace
// written out.
func isRootDisconnect(data any) bool {
	b, ok := data.(*types.StringBuffer)
	if !ok || b.Len() > 3 {
		return false
	}
	p := b.Bytes()
	return len(p) > 0 && p[0] == '1' && (len(p) == 1 || string(p) == "1/,")
}

// splitEvent takes an incoming packet's arguments apart: the event name,
// its arguments, and the ack callback when the device sent one.
func splitEvent(args []any) (string, protocol.Args, server.Ack) {
	if len(args) == 0 {
		return "", protocol.Args{}, nil
	}
	var event string
	switch v := args[0].(type) {
	case string:
		event = v
	default:
		event = fmt.Sprint(v)
	}
	rest, fn := protocol.SplitAck(args[1:])
	var ack server.Ack
	if fn != nil {
		ack = func(a protocol.Args) { fn(a.Wire(), nil) }
	}
	return event, protocol.ArgsOf(rest), ack
}

// sioConn is a Conn over a socket.io server socket.
type sioConn struct {
	s *socket.Socket
	// direct, when not nil, takes the device's events and acks from its
	// transport (directSink); the acks it awaits are then in acks.
	direct *directSink
	acks   directAcks
}

// newSioConn returns the Conn of s, with a directSink installed on its
// transport when the transport is one that can feed it: the relay's
// websocket transport, Engine.IO 4, from the connection's start.
func newSioConn(s *socket.Socket) *sioConn {
	c := &sioConn{s: s}
	if s.Conn().Protocol() != 4 {
		return c
	}
	if w, ok := s.Conn().Transport().(*wsTransport); ok {
		if st := w.state(); st != nil {
			c.direct = newDirectSink(c)
			st.direct.Store(c.direct)
		}
	}
	return c
}

func (c *sioConn) Emit(event string, args protocol.Args) { _ = c.s.Emit(event, args.Wire()...) }

func (c *sioConn) EmitWithAck(event string, args protocol.Args, ack func(protocol.Args)) {
	vals := args.Wire()
	if c.direct != nil {
		id := c.acks.add(func(vals []any) { ack(protocol.ArgsOf(vals)) })
		data := make([]any, 0, len(vals)+1)
		data = append(data, event)
		data = append(data, vals...)
		c.write(&parser.Packet{Type: parser.EVENT, Nsp: "/", Id: &id, Data: data})
		return
	}
	all := make([]any, 0, len(vals)+1)
	all = append(all, vals...)
	all = append(all, socket.Ack(func(vals []any, err error) {
		if err == nil {
			ack(protocol.ArgsOf(vals))
		}
	}))
	_ = c.s.Emit(event, all...)
}

// directEncoder encodes the packets a sioConn writes itself.
var directEncoder = relayEncoder{inner: parser.NewEncoder()}

// write sends p to the device, as the library's socket does: over the
// relay's websocket transport, framed and written at once (the engine's
// write path adds nothing there: the transport is always writable, and
// nothing listens to its events), otherwise through the engine.
func (c *sioConn) write(p *parser.Packet) {
	conn := c.s.Conn()
	if conn.ReadyState() != "open" {
		return
	}
	bufs := directEncoder.Encode(p)
	if w, ok := conn.Transport().(*wsTransport); ok && conn.Protocol() == 4 {
		w.sendMessages(bufs)
		return
	}
	c.s.Client().WriteToEngine(bufs, &socket.WriteOptions{})
}

// answer returns the ack callback of the device's event id: the first
// call sends the answer, while the device is on "/".
func (c *sioConn) answer(id uint64) func([]any, error) {
	var sent atomic.Bool
	return func(vals []any, _ error) {
		if !sent.CompareAndSwap(false, true) || !c.s.Connected() {
			return
		}
		c.write(&parser.Packet{Type: parser.ACK, Nsp: "/", Id: &id, Data: vals})
	}
}

// takeAck returns the ack awaited for id, and forgets it.
func (c *sioConn) takeAck(id uint64) func([]any) { return c.acks.take(id) }

// closeGrace is how long a disconnected device has to close its transport
// itself before the relay closes it. Closing at once can lose the last
// packets (the SERVER_ERROR that says why) on a websocket.
const closeGrace = time.Second

// Disconnect ends the device's namespace session at once (it gets the
// DISCONNECT packet after everything sent before it) and closes the
// transport after closeGrace, if the device has not closed it by then.
func (c *sioConn) Disconnect() {
	c.s.Disconnect(false)
	conn := c.s.Conn()
	time.AfterFunc(closeGrace, func() { conn.Close(false) })
}

// Close closes the transport under the socket, without a namespace
// disconnect: to the device it looks like a network drop, and socket.io
// clients reconnect by themselves. The close comes closeLinger after what
// was sent before it: a client that reads data and the end of its
// connection at once may drop the data (the Go client does) otherwise.
func (c *sioConn) Close() {
	conn := c.s.Conn()
	linger := closeLinger
	if t := conn.Transport(); t != nil && t.Name() == transports.POLLING {
		// What was sent waits for the device's next poll, which a busy
		// device or machine may make well after 100 ms.
		linger = pollCloseLinger
	}
	time.AfterFunc(linger, func() { conn.Close(false) })
}

// closeLinger is how long Close lets what was sent before it reach a
// device on websocket, pollCloseLinger one on long-polling.
const (
	closeLinger     = 100 * time.Millisecond
	pollCloseLinger = time.Second
)

// Alive reports whether the device still answers on this connection: over
// the relay's websocket transport, a websocket ping; over polling, a
// message that completes its pending poll, after which a live device polls
// again at once. Over a transport it cannot ask (the library's own
// websocket transport, WebTransport) it reports true.
func (c *sioConn) Alive(timeout time.Duration) bool {
	conn := c.s.Conn()
	if conn.ReadyState() != "open" {
		return false
	}
	switch t := conn.Transport().(type) {
	case *wsTransport:
		return t.alive(timeout)
	case nil:
		return false
	default:
		if t.Name() != transports.POLLING {
			return true
		}
		return pollAlive(conn, t, timeout)
	}
}

// probePacket is a socket.io packet for a namespace no device joins: every
// client drops it unread. It serves only to complete a pending poll.
const probePacket = `2/p2p-liveness,["probe"]`

// pollAlive asks a polling device whether it is there: the probe completes
// its pending poll request, or waits for its next one; the device is alive
// when a poll request or a packet comes from it within timeout.
func pollAlive(conn engine.Socket, t transports.Transport, timeout time.Duration) bool {
	heard := make(chan struct{}, 1)
	hear := types.EventListener(func(...any) {
		select {
		case heard <- struct{}{}:
		default:
		}
	})
	_ = t.On("ready", hear)
	_ = conn.On("packet", hear)
	defer t.RemoveListener("ready", hear)
	defer conn.RemoveListener("packet", hear)
	conn.Send(strings.NewReader(probePacket), nil, nil)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-heard:
		return true
	case <-timer.C:
		return false
	}
}

func (c *sioConn) Transport() string {
	if t := c.s.Conn().Transport(); t != nil {
		return t.Name()
	}
	return ""
}

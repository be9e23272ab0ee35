package socketio

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	engine "github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// connectGate closes a race in the socket.io server library. When a client
// joins a namespace, the library sends the client its CONNECT packet first
// and only then records the namespace as joined; a fast client that sends
// its first event (or ack) in between has it taken for a protocol violation
// and its whole connection closed. Node.js cannot see this (one thread);
// Go, and a client on loopback, can.
//
// The gate listens to each Engine.IO connection's incoming data before the
// socket.io client does. While a namespace connection of that client is
// under way, it holds the client's other packets back until the namespace's
// "connection" event says the join is recorded, or until gateWait passes.
//
// The gate also keeps what the relay's guards (guard.go) know of each
// connection, by Engine.IO id: whether it is admitted, what it sent before,
// the binary attachments it owes. The relay's transports find it there.
type connectGate struct {
	mu    sync.Mutex // guards conns
	conns map[string]*gateState

	// pingTimeout is the engine's, once NewSocketServer has the options.
	pingTimeout atomic.Int64
}

// gateWait bounds how long a packet is held back; a join that was refused
// never fires "connection" and releases its packets after it.
const gateWait = time.Second

type gateState struct {
	mu      sync.Mutex // guards pending, ready, att
	pending int        // namespace joins under way
	ready   chan struct{}
	att     attachments

	adm admission

	// direct takes the device's events and acks on "/" from the
	// websocket transport, when set (directSink).
	direct atomic.Pointer[directSink]
}

func newConnectGate() *connectGate {
	return &connectGate{conns: make(map[string]*gateState)}
}

// eventBye is what the gate emits on an Engine.IO connection when the
// device sends DISCONNECT for the default namespace.
const eventBye = "p2p:bye"

// NewSocketServer builds a socket.io server for the relay, with the
// connection race described at connectGate closed, and returns it with the
// HTTP handler that serves it (mount it at /socket.io/). opts may be nil
// (NewSocketServerOptions). Use it instead of socket.NewServer when you
// embed the relay with Attach.
func NewSocketServer(opts *socket.ServerOptions) (*socket.Server, http.Handler) {
	if opts == nil {
		opts = NewSocketServerOptions()
	}
	if opts.GetRawPath() == nil {
		opts.SetPath("/socket.io")
	}
	io := socket.NewServer(nil, opts)
	eng := engine.NewServer(opts)
	// The engine's options, with its defaults for what opts leaves unset.
	eo := eng.Opts()
	if opts.GetRawIdleTimeout() == nil {
		eo.SetIdleTimeout(silenceBound(eo.PingInterval(), eo.PingTimeout()))
	}
	g := gateOf(opts)
	g.pingTimeout.Store(int64(eo.PingTimeout()))
	// Registered before io.Bind, so the gate sees every connection, and
	// listens to its data, before the socket.io client does.
	_ = eng.On("connection", func(args ...any) {
		if c, ok := args[0].(engine.Socket); ok {
			g.watch(c)
		}
	})
	io.Bind(eng)
	release := func(args ...any) {
		if s, ok := args[0].(*socket.Socket); ok {
			g.joined(s.Conn().Id())
		}
	}
	_ = io.Sockets().On("connection", release)
	_ = io.Sockets().On("new_namespace", func(args ...any) {
		if nsp, ok := args[0].(socket.Namespace); ok {
			_ = nsp.On("connection", release)
		}
	})
	return io, eng
}

// gateOf returns the gate the relay's transports in opts report to (see
// NewSocketServerOptions), or a new one.
func gateOf(opts *socket.ServerOptions) *connectGate {
	if ts := opts.Transports(); ts != nil {
		for _, t := range ts.Keys() {
			switch c := t.(type) {
			case pollingCtor:
				return c.gate
			case websocketCtor:
				return c.gate
			}
		}
	}
	return newConnectGate()
}

// state returns what the gate knows of Engine.IO connection id, nil if
// nothing.
func (g *connectGate) state(id string) *gateState {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.conns[id]
}

// silenceBound is how long a websocket may go without a message before
// it is closed: the engine's idle timeout, which both its websocket
// transport and the relay's apply as a read deadline, renewed by every
// message. It answers the engine's heartbeat on Engine.IO 3, which the
// device drives with its pings: the engine clears its ping timeout when
// the device upgrades to websocket, and arms it again only on the next
// ping, so a device silent after its upgrade lived until the idle
// timeout, 120 s by default, with its id taken and its peer not told.
// A device pings every ping interval and the engine allows it the ping
// timeout on top; Engine.IO 4 devices answer the engine's pings, which
// come up to a third of the ping timeout late (pongs). Half a ping
// timeout more covers both.
func silenceBound(interval, timeout time.Duration) time.Duration {
	return interval + timeout + timeout/2
}

func (g *connectGate) watch(c engine.Socket) {
	st := &gateState{}
	if c.Protocol() == 3 {
		// socket.io joins an Engine.IO 3 client to "/" by itself.
		st.pending, st.ready = 1, make(chan struct{})
	}
	id := c.Id()
	g.mu.Lock()
	g.conns[id] = st
	g.mu.Unlock()
	_ = c.Once(eventAdmitted, func(...any) { st.admit() })
	_ = c.On(eventRefused, func(...any) { st.settle() })
	_ = c.On("data", func(args ...any) {
		if len(args) == 0 {
			return
		}
		if isRootDisconnect(args[0]) {
			// Said here, before the socket.io client reads (and empties)
			// the buffer: see admit.
			c.Emit(eventBye)
		}
		st.hold(c, args[0], time.Duration(g.pingTimeout.Load()))
	})
	boundOutbound(c)
	_ = c.Once("close", func(...any) {
		g.mu.Lock()
		delete(g.conns, id)
		g.mu.Unlock()
		st.mu.Lock()
		st.att.stop()
		st.mu.Unlock()
	})
}

// joined records that one namespace join of connection id completed.
func (g *connectGate) joined(id string) {
	g.mu.Lock()
	st := g.conns[id]
	g.mu.Unlock()
	if st == nil {
		return
	}
	st.admit()
	st.settle()
}

// settle records that one namespace join of st's connection ended, with
// or without success.
func (st *gateState) settle() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.pending == 0 {
		return
	}
	st.pending--
	if st.pending == 0 {
		close(st.ready)
		st.ready = nil
	}
}

// hold counts a client CONNECT packet as a join under way, and makes any
// other packet wait while a join is under way. It also keeps count of the
// binary attachments c announced and has not sent, each due within wait
// (attachments).
func (st *gateState) hold(c engine.Socket, data any, wait time.Duration) {
	connect := false
	switch b := data.(type) {
	case *types.StringBuffer:
		p, _ := b.Peek(maxLengthDigits + 2)
		connect = len(p) > 0 && p[0] == '0'
		if n := announced(p); n > 0 {
			st.mu.Lock()
			st.att.announce(n, wait, func() { c.Transport().OnError("binary attachments missing", errAttachments) })
			st.mu.Unlock()
		}
	case *types.BytesBuffer:
		st.mu.Lock()
		st.att.received()
		st.mu.Unlock()
	}
	if connect {
		st.mu.Lock()
		if st.pending == 0 {
			st.ready = make(chan struct{})
		}
		st.pending++
		st.mu.Unlock()
		return
	}
	st.await()
}

// await waits while a namespace join of st's connection is under way, at
// most gateWait.
func (st *gateState) await() {
	st.mu.Lock()
	ready := st.ready
	st.mu.Unlock()
	if ready == nil {
		return
	}
	t := time.NewTimer(gateWait)
	defer t.Stop()
	select {
	case <-ready:
	case <-t.C:
		// The join was refused or is stuck: let the library deal with the
		// packet, and stop holding this connection back.
		st.mu.Lock()
		if st.ready == ready {
			st.pending = 0
			close(ready)
			st.ready = nil
		}
		st.mu.Unlock()
	}
}

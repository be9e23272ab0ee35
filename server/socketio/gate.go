package socketio

import (
	"net/http"
	"sync"
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
type connectGate struct {
	mu    sync.Mutex // guards conns
	conns map[string]*gateState
}

// gateWait bounds how long a packet is held back; a join that was refused
// never fires "connection" and releases its packets after it.
const gateWait = time.Second

type gateState struct {
	mu      sync.Mutex // guards pending, ready
	pending int        // namespace joins under way
	ready   chan struct{}
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
	g := newConnectGate()
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
	_ = c.On("data", func(args ...any) {
		if len(args) == 0 {
			return
		}
		if isRootDisconnect(args[0]) {
			// Said here, before the socket.io client reads (and empties)
			// the buffer: see admit.
			c.Emit(eventBye)
		}
		st.hold(args[0])
	})
	_ = c.Once("close", func(...any) {
		g.mu.Lock()
		delete(g.conns, id)
		g.mu.Unlock()
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
// other packet wait while a join is under way.
func (st *gateState) hold(data any) {
	connect := false
	if b, ok := data.(*types.StringBuffer); ok {
		p, _ := b.Peek(1)
		connect = len(p) == 1 && p[0] == '0'
	}
	st.mu.Lock()
	if connect {
		if st.pending == 0 {
			st.ready = make(chan struct{})
		}
		st.pending++
		st.mu.Unlock()
		return
	}
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

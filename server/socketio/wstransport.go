package socketio

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	ws "github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// websocketCtor builds the relay's websocket transport, which the engine
// takes through its TransportCtor extension point in place of its own.
// It speaks the same wire protocol; what differs is the work per message:
//
//   - a message is read into a pooled scratch buffer and kept in one
//     right-sized copy (the library's transport grows a fresh buffer per
//     message, and its packet decoder copies it once more);
//   - packets are written by the goroutine that sends them, under a lock,
//     instead of being handed to a write-queue goroutine: writes go to the
//     connection's coalescing buffer (coalescingConn) and never wait on
//     the network, so this costs nothing and saves a goroutine hand-off
//     per message;
//   - a message is framed here and written with one copy, rather than
//     through the websocket library's writer, which copies it into a
//     buffer of its own and takes a lock and a write deadline per frame.
//
// Writing from the sender's goroutine is only right where writes never
// wait on the network: on the connections of Service's listeners. Served
// from anyone else's http.Server (Attach, Service.Handler), a connection
// gets the library's own transport instead.
//
// It applies the relay's guards (guard.go) to every message before
// anything is decoded, and answers the engine's heartbeat race (pongs).
type websocketCtor struct{ gate *connectGate }

func (c websocketCtor) New(ctx *types.HttpContext) transports.Transport {
	if !writesNeverWait(ctx.Websocket) {
		return transports.NewWebSocket(ctx)
	}
	w := &wsTransport{Transport: transports.MakeTransport(), gate: c.gate, sid: ctx.Query().Peek("sid")}
	w.Prototype(w)
	w.Construct(ctx)
	return w
}

// writesNeverWait reports whether c's writes go to a coalescingConn, under
// TLS or not.
func writesNeverWait(c *types.WebSocketConn) bool {
	nc := c.NetConn()
	if t, ok := nc.(*tls.Conn); ok {
		nc = t.NetConn()
	}
	_, ok := nc.(*coalescingConn)
	return ok
}

func (websocketCtor) Name() string          { return transports.WEBSOCKET }
func (websocketCtor) HandlesUpgrades() bool { return true }
func (websocketCtor) UpgradesTo() []string  { return nil }

// wsTransport is an Engine.IO websocket transport.
type wsTransport struct {
	transports.Transport

	conn        *types.WebSocketConn
	idleTimeout time.Duration
	heard       chan struct{} // a token each time the device is heard from

	wmu sync.Mutex // guards writes on conn

	gate  *connectGate
	sid   string // from the upgrade request, if any
	st    atomic.Pointer[gateState]
	pongs pongs
}

// state returns what the gate knows of the transport's connection.
func (w *wsTransport) state() *gateState {
	if st := w.st.Load(); st != nil {
		return st
	}
	id := w.Sid()
	if id == "" {
		id = w.sid
	}
	st := w.gate.state(id)
	if st != nil {
		w.st.Store(st)
	}
	return st
}

// Construct sets the transport up on an upgraded connection and starts
// reading once the engine allows it.
func (w *wsTransport) Construct(ctx *types.HttpContext) {
	w.Transport.Construct(ctx)
	w.idleTimeout = ctx.IdleTimeout
	w.conn = ctx.Websocket
	_ = w.conn.On("error", func(errs ...any) {
		var err error
		if len(errs) > 0 {
			err, _ = errs[0].(error)
		}
		w.OnError("websocket error", err)
	})
	_ = w.conn.Once("close", func(...any) { w.OnClose() })
	// Set before reading starts: the websocket library calls it from the
	// reader, for each pong.
	w.heard = make(chan struct{}, 1)
	w.conn.SetPongHandler(func(string) error { w.hear(); return nil })
	w.SetWritable(true)
	w.SetPerMessageDeflate(nil)
	transports.StartReader(w, ctx.TransportReadPermission(), w.read)
}

func (w *wsTransport) Name() string          { return transports.WEBSOCKET }
func (w *wsTransport) HandlesUpgrades() bool { return true }

// scratch holds the buffers messages are read into before their copy.
var scratch = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxScratch is the largest scratch buffer kept for reuse.
const maxScratch = 64 << 10

// read starts the reading goroutine. The engine calls it on a goroutine of
// its own once the transport may read; the reading goes on in a fresh one,
// whose stack holds little besides the websocket library's read path. An
// idle connection's reader is parked there, and the runtime shrinks a
// parked goroutine's stack only while it uses less than a quarter of it
// (800 bytes of guard included): read from the engine's goroutine, a
// reader used about 1.4 KiB and kept an 8 KiB stack; from a goroutine of
// its own it uses about 1.1 KiB and keeps 4 KiB. That is 4 KiB less per
// idle device.
func (w *wsTransport) read() { go w.readLoop() }

// readLoop receives messages until the connection ends. It is kept small:
// its frame is on the stack while the reader waits.
func (w *wsTransport) readLoop() {
	for {
		w.armIdleTimeout()
		mt, r, err := w.conn.NextReader()
		if !w.take(mt, r, err) {
			break
		}
	}
	w.conn.Emit("close")
}

//go:noinline
func (w *wsTransport) armIdleTimeout() {
	if w.idleTimeout > 0 {
		_ = w.conn.SetReadDeadline(time.Now().Add(w.idleTimeout))
	}
}

// take reads one message and hands it on; false ends reading.
//
//go:noinline
func (w *wsTransport) take(mt int, r io.Reader, err error) bool {
	if err != nil {
		w.fail(err)
		return false
	}
	w.hear()
	switch mt {
	case ws.TextMessage, ws.BinaryMessage:
		// Before admission, no more is read than the connection may still
		// send (guard.go).
		st, limit := w.state(), int64(-1)
		if !st.isAdmitted() && !st.admitting() {
			limit = st.budgetLeft()
			r = io.LimitReader(r, limit+1)
		}
		b := scratch.Get().(*bytes.Buffer)
		b.Reset()
		_, err := b.ReadFrom(r)
		data := bytes.Clone(b.Bytes())
		if b.Cap() <= maxScratch {
			scratch.Put(b)
		}
		if err == nil && limit >= 0 {
			if err = errPreAuthSize; int64(len(data)) <= limit {
				err = st.charge(mt == ws.TextMessage, data)
			}
		}
		if err != nil {
			w.fail(err)
			return false
		}
		w.receive(mt, data)
	case ws.CloseMessage:
		return false
	}
	return true
}

// receive hands one message on: to the connection's directSink when it
// takes it (a device's events and acks), else to the engine. A text
// MESSAGE packet of Engine.IO 4 becomes a packet directly; anything else
// goes through the library's packet decoder.
func (w *wsTransport) receive(mt int, data []byte) {
	if st := w.state(); st != nil {
		if ds := st.direct.Load(); ds != nil && ds.take(w, st, mt == ws.BinaryMessage, data) {
			return
		}
	}
	if mt == ws.BinaryMessage {
		w.OnData(types.NewBytesBuffer(data))
		return
	}
	if w.Protocol() == 4 && len(data) > 0 && data[0] == '4' {
		w.OnPacket(&packet.Packet{Type: packet.MESSAGE, Data: types.NewStringBuffer(data[1:])})
		return
	}
	w.OnData(types.NewStringBuffer(data))
	if w.Protocol() == 4 && len(data) == 1 && data[0] == '3' {
		w.pongs.answered(w.OnPacket)
	}
}

// fail reports a read or write error, as the library's transport does: a
// closed connection is a close, anything else an error.
func (w *wsTransport) fail(err error) {
	if ws.IsUnexpectedCloseError(err) || errors.Is(err, net.ErrClosed) {
		w.conn.Emit("close")
		return
	}
	w.conn.Emit("error", err)
}

// Send writes packets, each as one websocket frame, then reports the
// transport drained. It stays writable throughout: writes queue in the
// connection's buffer and never wait on the network.
func (w *wsTransport) Send(packets []*packet.Packet) {
	w.wmu.Lock()
	var err error
	for _, p := range packets {
		if err = w.write(p); err != nil {
			break
		}
	}
	w.wmu.Unlock()
	if err != nil {
		w.fail(err)
		return
	}
	w.Emit("drain")
}

// sendMessages writes Engine.IO 4 MESSAGE packets of socket.io data, one
// frame each, in one go: text as "4" + data, binary as it is.
func (w *wsTransport) sendMessages(bufs []types.BufferInterface) {
	w.wmu.Lock()
	var err error
	for _, b := range bufs {
		if _, ok := b.(*types.StringBuffer); ok {
			err = w.frame(ws.TextMessage, '4', b.Bytes())
		} else {
			err = w.frame(ws.BinaryMessage, 0, b.Bytes())
		}
		if err != nil {
			break
		}
	}
	w.wmu.Unlock()
	if err != nil {
		w.fail(err)
	}
}

// write sends one packet. w.wmu must be held.
func (w *wsTransport) write(p *packet.Packet) error {
	if p.Type == packet.PING {
		w.pongs.pinged(w.gate)
	}
	if sb, ok := p.Data.(*types.StringBuffer); ok && p.Type == packet.MESSAGE {
		// Engine.IO 3 and 4 both write a text message as "4" + data.
		return w.frame(ws.TextMessage, '4', sb.Bytes())
	}
	data, err := w.Parser().EncodePacket(p, w.SupportsBinary())
	if err != nil {
		return err
	}
	op := byte(ws.BinaryMessage)
	if _, ok := data.(*types.StringBuffer); ok {
		op = ws.TextMessage
	}
	return w.frame(op, 0, data.Bytes())
}

// frames holds the buffers frames are built in.
var frames = sync.Pool{New: func() any { return new([]byte) }}

// frame writes one websocket message: a single final, unmasked and
// uncompressed frame (RFC 6455, section 5.2) with prefix, when not 0, as
// its first byte, then payload. The transport never compresses: it leaves
// per-message deflate off. The frame goes out in one Write, so that it
// never interleaves with the control frames (pongs, close) the websocket
// library writes on the same connection; the connection's coalescing
// buffer copies it, so building it in a pooled buffer is the only copy
// between the packet and the kernel.
func (w *wsTransport) frame(op byte, prefix byte, payload []byte) error {
	n := len(payload)
	if prefix != 0 {
		n++
	}
	bp := frames.Get().(*[]byte)
	b := append((*bp)[:0], 0x80|op)
	switch {
	case n <= 125:
		b = append(b, byte(n))
	case n <= 0xffff:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if prefix != 0 {
		b = append(b, prefix)
	}
	b = append(b, payload...)
	_, err := w.conn.NetConn().Write(b)
	if cap(b) <= maxScratch {
		*bp = b
		frames.Put(bp)
	}
	return err
}

// hear notes that the device was heard from.
func (w *wsTransport) hear() {
	select {
	case w.heard <- struct{}{}:
	default:
	}
}

// alive sends a websocket ping and reports whether the device answers
// (with its pong, or anything else) within timeout. Every websocket client
// answers pings by itself, whatever its Engine.IO version: a device whose
// process is frozen, or whose network is gone, does not.
func (w *wsTransport) alive(timeout time.Duration) bool {
	select {
	case <-w.heard: // forget what was heard before the question
	default:
	}
	// Framed here, not with the websocket library's WriteControl, which
	// would leave a write deadline on the connection.
	w.wmu.Lock()
	err := w.frame(ws.PingMessage, 0, nil)
	w.wmu.Unlock()
	if err != nil {
		return false
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-w.heard:
		return true
	case <-t.C:
		return false
	}
}

// OnClose releases the connection on every close path.
func (w *wsTransport) OnClose() {
	w.Transport.OnClose()
	_ = w.conn.Close()
}

// DoClose closes the transport.
func (w *wsTransport) DoClose(fn types.Callable) {
	defer func() { _ = w.conn.Close() }()
	if fn != nil {
		fn()
	}
}

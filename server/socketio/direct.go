package socketio

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// directSink takes a device's events and ack answers on the default
// namespace straight from the relay's websocket transport, on its reading
// goroutine, in the order they came, instead of through the socket.io
// library's socket: the library hands every packet to a goroutine of the
// socket's task queue (started afresh for each packet of a device that
// sends now and then, its stack grown each time), builds the event through
// its emitters, and keeps acks in a copy-on-write map that is copied for
// every ack awaited. At a device fleet's pace that was about a quarter of
// the relay's CPU per message.
//
// What is taken: EVENT, ACK, BINARY_EVENT and BINARY_ACK packets of "/",
// and the binary attachments of the last two. Everything else (connecting,
// disconnecting, other namespaces, Engine.IO's own packets) goes the
// library's way, as does everything once the device has disconnected from
// "/" on the connection. Acks of the events the relay sends the device
// (sioConn.EmitWithAck) are kept by the sioConn, whose answers come here.
//
// Only Engine.IO 4 connections over the relay's websocket transport, from
// their start, take this path: for them every such packet comes through
// the one reading goroutine, so nothing of theirs can be waiting in the
// library's queue when the next one is taken here.
type directSink struct {
	conn  *sioConn
	event atomic.Pointer[func(args ...any)] // set once the device joined

	// dec decodes what decodeFast leaves (binary packets, text it refuses)
	// as the library's decoder would; made when first needed (a few KiB
	// that most devices never use). Only the reading goroutine uses it.
	dec     *relayDecoder
	decoded *parser.Packet
}

func newDirectSink(c *sioConn) *directSink { return &directSink{conn: c} }

// decoder returns the sink's decoder, made on first use.
func (ds *directSink) decoder() *relayDecoder {
	if ds.dec == nil {
		ds.dec = relayParser{}.NewDecoder().(*relayDecoder)
		_ = ds.dec.On("decoded", func(args ...any) {
			if len(args) > 0 {
				ds.decoded, _ = args[0].(*parser.Packet)
			}
		})
	}
	return ds.dec
}

// reassembling reports whether the sink's decoder awaits attachments.
func (ds *directSink) reassembling() bool { return ds.dec != nil && ds.dec.binary.Load() }

// joined starts taking the device's events, each passed to handle as the
// library's socket would pass them to an OnAny listener.
func (ds *directSink) joined(handle func(args ...any)) { ds.event.Store(&handle) }

// take handles one message of st's connection if it is for the sink,
// and reports whether it was. w is the connection's transport.
func (ds *directSink) take(w *wsTransport, st *gateState, binary bool, data []byte) bool {
	if binary {
		if !ds.reassembling() {
			return false // not an attachment of a packet the sink took
		}
		st.mu.Lock()
		st.att.received()
		st.mu.Unlock()
		return ds.decode(w, types.NewBytesBuffer(data))
	}
	if len(data) < 2 || data[0] != '4' {
		return false // Engine.IO's own, or empty
	}
	b := data[1:]
	if ds.reassembling() {
		// Text while attachments are due: the decoder refuses it.
		return ds.decode(w, types.NewStringBuffer(b))
	}
	switch b[0] {
	case '1': // DISCONNECT
		if len(b) == 1 || b[1] != '/' {
			// The device leaves "/": from here on, the library's way.
			st.direct.CompareAndSwap(ds, nil)
		}
		return false
	case '2':
		if ds.event.Load() == nil {
			return false
		}
	case '3':
	case '5', '6':
		if !ownNamespace(b) || (b[0] == '5' && ds.event.Load() == nil) {
			return false
		}
		if !ds.conn.s.Connected() {
			return false
		}
		if n := announced(b); n > 0 {
			st.mu.Lock()
			st.att.announce(n, time.Duration(w.gate.pingTimeout.Load()), func() { w.OnError("binary attachments missing", errAttachments) })
			st.mu.Unlock()
		}
		return ds.decode(w, types.NewStringBuffer(b))
	default:
		return false
	}
	if len(b) > 1 && b[1] == '/' {
		return false // another namespace
	}
	if !ds.conn.s.Connected() {
		return false
	}
	if p := decodeFast(b); p != nil {
		ds.dispatch(p)
		return true
	}
	return ds.decode(w, types.NewStringBuffer(b))
}

// ownNamespace reports whether a BINARY_EVENT or BINARY_ACK packet
// ("51-[...]", "51-/nsp,[...]") is for "/".
func ownNamespace(b []byte) bool {
	for i := 1; i < len(b) && i <= maxLengthDigits+1; i++ {
		if b[i] == '-' {
			return i+1 < len(b) && b[i+1] != '/'
		}
	}
	return false
}

// decode passes data to the sink's decoder, and dispatches the packet it
// completes, if any. A packet the decoder refuses closes the connection,
// as the library's client does.
func (ds *directSink) decode(w *wsTransport, data any) bool {
	if err := ds.decoder().Add(data); err != nil {
		ds.conn.s.Conn().Close(false)
		return true
	}
	if p := ds.decoded; p != nil {
		ds.decoded = nil
		ds.dispatch(p)
	}
	return true
}

// dispatch hands a decoded packet of "/" to the relay: an event to the
// handler, an ack answer to the sioConn.
func (ds *directSink) dispatch(p *parser.Packet) {
	switch p.Type {
	case parser.EVENT, parser.BINARY_EVENT:
		args, ok := p.Data.([]any)
		if !ok {
			return
		}
		if p.Id != nil {
			args = append(args, socket.Ack(ds.conn.answer(*p.Id)))
		}
		if h := ds.event.Load(); h != nil {
			(*h)(args...)
		}
	case parser.ACK, parser.BINARY_ACK:
		if p.Id == nil {
			return
		}
		if fn := ds.conn.takeAck(*p.Id); fn != nil {
			vals, _ := p.Data.([]any)
			fn(vals)
		}
	}
}

// directAcks are the acks a sioConn awaits from a device whose answers
// come through a directSink.
type directAcks struct {
	mu   sync.Mutex // guards next, wait
	next uint64
	wait map[uint64]func([]any)
}

// add records fn as the ack awaited for a new id, and returns the id.
func (a *directAcks) add(fn func([]any)) uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.next++
	if a.wait == nil {
		a.wait = make(map[uint64]func([]any))
	}
	a.wait[a.next] = fn
	return a.next
}

// take returns the ack awaited for id and forgets it, or nil.
func (a *directAcks) take(id uint64) func([]any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	fn := a.wait[id]
	delete(a.wait, id)
	return fn
}

// clear forgets every ack awaited, as the library's socket does when it
// disconnects: none of them is called.
func (a *directAcks) clear() {
	a.mu.Lock()
	a.wait = nil
	a.mu.Unlock()
}

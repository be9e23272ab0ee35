// Package loadgen is the benchmark's load generator: a minimal socket.io
// client and the scenarios that drive a P2P relay with it, measured from the
// relay process's /proc entries. It drives p2pd and the Node reference relay
// identically: the same bytes on the same websocket transport.
//
// The client speaks only what the scenarios need: Engine.IO 4 over the
// websocket transport (open packet, the server's pings answered with
// pongs), socket.io 5 on the default namespace (connect, events, events with
// ack ids, acks). It does not reconnect, poll, upgrade, or decode binary
// packets. Messages are built from bytes prepared in advance, so the
// generator costs as little CPU as possible: on a 2-core machine every cycle
// it spends is a cycle the relay under test does not get.
package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Packet kinds a Handler receives (the socket.io packet type digit).
const (
	KindEvent = '2'
	KindAck   = '3'
)

// NoAck is a Packet's AckID when the event carries no ack id.
const NoAck = -1

// callBase is where the ack ids of Call start; ids below it belong to the
// caller of Send, whose Handler receives their acks.
const callBase = 1 << 40

// Packet is one socket.io packet from the relay: an event (with an ack id
// when the relay wants an answer) or the ack of one of our events.
type Packet struct {
	Kind  byte   // KindEvent or KindAck
	AckID int64  // the ack id, NoAck when none
	Data  []byte // the JSON array: [name, args...] for an event, [args...] for an ack
}

// Event returns an event packet's name, or "" when it has none.
func (p Packet) Event() string {
	data := p.Data
	if len(data) < 3 || data[0] != '[' || data[1] != '"' {
		return ""
	}
	end := bytes.IndexByte(data[2:], '"')
	if end < 0 {
		return ""
	}
	name := data[2 : 2+end]
	if bytes.IndexByte(name, '\\') >= 0 {
		var all []json.RawMessage
		var s string
		if json.Unmarshal(data, &all) != nil || len(all) == 0 || json.Unmarshal(all[0], &s) != nil {
			return ""
		}
		return s
	}
	return string(name)
}

// IsEvent reports whether p is the event name, without allocating.
func (p Packet) IsEvent(name string) bool {
	d := p.Data
	return len(d) >= len(name)+3 && d[0] == '[' && d[1] == '"' && string(d[2:2+len(name)]) == name && d[2+len(name)] == '"'
}

// Args decodes an event's arguments (after the name) or an ack's values.
func (p Packet) Args() ([]any, error) {
	var all []any
	if err := json.Unmarshal(p.Data, &all); err != nil {
		return nil, fmt.Errorf("bad packet data %q: %w", truncate(p.Data), err)
	}
	if p.Kind == KindEvent && len(all) > 0 {
		all = all[1:]
	}
	return all, nil
}

// Handler receives every event and every ack below the Call range. It runs
// on the connection's reader goroutine, one packet at a time; p.Data is
// valid only during the call. It may write on c (Answer, Send).
type Handler func(c *Conn, p Packet)

// Dialer opens device connections to one relay.
type Dialer struct {
	// URL is the relay's base URL, http://host:port.
	URL string
	// Timeout bounds one connection's websocket and namespace handshakes.
	// Default 10s.
	Timeout time.Duration
	// Sources, when set, are the local addresses connections come from,
	// in turn (see LoopbackSources); by default the system picks one.
	Sources []netip.Addr

	once sync.Once
	ws   *websocket.Dialer
	next atomic.Uint64 // the next connection's source
}

func (d *Dialer) init() {
	d.once.Do(func() {
		if d.Timeout <= 0 {
			d.Timeout = 10 * time.Second
		}
		d.ws = &websocket.Dialer{
			HandshakeTimeout: d.Timeout,
			ReadBufferSize:   4096,
			WriteBufferSize:  4096,
			// Idle devices then hold no write buffer.
			WriteBufferPool: &sync.Pool{},
		}
		if len(d.Sources) > 0 {
			d.ws.NetDialContext = d.dialFromSource
		}
	})
}

// dialFromSource opens a TCP connection from the next of d.Sources.
func (d *Dialer) dialFromSource(ctx context.Context, network, addr string) (net.Conn, error) {
	src := d.Sources[(d.next.Add(1)-1)%uint64(len(d.Sources))]
	nd := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), Control: bindAddressNoPort}
	return nd.DialContext(ctx, network, addr)
}

// ConnectError is the relay's refusal of a namespace connection.
type ConnectError struct{ Message string }

func (e *ConnectError) Error() string { return "connection refused by the relay: " + e.Message }

// Conn is one device's connection. Create it with Dialer.Dial; the caller
// must Close it.
type Conn struct {
	ID string

	ws      *websocket.Conn
	handler Handler

	wmu sync.Mutex // guards writes on ws

	cmu      sync.Mutex // guards calls, nextCall
	calls    map[int64]chan []byte
	nextCall int64

	done    chan struct{}
	errv    atomic.Value // error that ended the reader
	closing atomic.Bool
}

// Dial connects device id (?clientId=id) and joins the default namespace.
// A refusal by the relay is a *ConnectError.
func (d *Dialer) Dial(ctx context.Context, id string, h Handler) (*Conn, error) {
	d.init()
	u, err := url.Parse(d.URL)
	if err != nil {
		return nil, fmt.Errorf("relay URL %q: %w", d.URL, err)
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	}
	u.Path = "/socket.io/"
	u.RawQuery = "EIO=4&transport=websocket&clientId=" + url.QueryEscape(id)

	ctx, cancel := context.WithTimeout(ctx, d.Timeout)
	defer cancel()
	ws, _, err := d.ws.DialContext(ctx, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", id, err)
	}
	c := &Conn{ID: id, ws: ws, handler: h, calls: make(map[int64]chan []byte), nextCall: callBase, done: make(chan struct{})}
	if err := c.handshake(ctx); err != nil {
		ws.Close()
		return nil, fmt.Errorf("connect %s: %w", id, err)
	}
	go c.readLoop()
	return c, nil
}

// handshake reads the Engine.IO open packet, joins the default namespace
// and waits for the relay's answer.
func (c *Conn) handshake(ctx context.Context) error {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.ws.SetReadDeadline(dl)
		defer func() { _ = c.ws.SetReadDeadline(time.Time{}) }()
	}
	sentConnect := false
	for {
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			return err
		}
		switch {
		case len(msg) > 0 && msg[0] == '0' && !sentConnect: // Engine.IO open
			if err := c.write([]byte("40")); err != nil {
				return err
			}
			sentConnect = true
		case len(msg) == 1 && msg[0] == '2': // Engine.IO ping
			if err := c.write([]byte("3")); err != nil {
				return err
			}
		case bytes.HasPrefix(msg, []byte("40")):
			return nil
		case bytes.HasPrefix(msg, []byte("44")):
			var e struct {
				Message string `json:"message"`
			}
			if json.Unmarshal(msg[2:], &e) != nil || e.Message == "" {
				e.Message = string(msg[2:])
			}
			return &ConnectError{Message: e.Message}
		default:
			return fmt.Errorf("unexpected packet during the handshake: %q", truncate(msg))
		}
	}
}

// readLoop reads packets until the connection ends, answering pings and
// handing events and acks to the handler.
func (c *Conn) readLoop() {
	defer close(c.done)
	var buf bytes.Buffer
	for {
		_, r, err := c.ws.NextReader()
		if err != nil {
			c.errv.Store(errBox{err})
			return
		}
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			c.errv.Store(errBox{err})
			return
		}
		c.dispatch(buf.Bytes())
	}
}

type errBox struct{ error }

func (c *Conn) dispatch(msg []byte) {
	if len(msg) == 0 {
		return
	}
	switch msg[0] {
	case '2': // Engine.IO ping
		_ = c.write([]byte("3"))
		return
	case '4': // socket.io packet
	default:
		return
	}
	if len(msg) < 2 || (msg[1] != KindEvent && msg[1] != KindAck) {
		return // namespace disconnect or error: the reader sees the close
	}
	p := Packet{Kind: msg[1], AckID: NoAck}
	i := 2
	if i < len(msg) && msg[i] >= '0' && msg[i] <= '9' {
		var id int64
		for ; i < len(msg) && msg[i] >= '0' && msg[i] <= '9'; i++ {
			id = id*10 + int64(msg[i]-'0')
		}
		p.AckID = id
	}
	p.Data = msg[i:]
	if p.Kind == KindAck && p.AckID >= callBase {
		c.cmu.Lock()
		ch := c.calls[p.AckID]
		delete(c.calls, p.AckID)
		c.cmu.Unlock()
		if ch != nil {
			ch <- bytes.Clone(p.Data)
		}
		return
	}
	if c.handler != nil {
		c.handler(c, p)
	}
}

func (c *Conn) write(b []byte) error {
	c.wmu.Lock()
	err := c.ws.WriteMessage(websocket.TextMessage, b)
	c.wmu.Unlock()
	return err
}

// Send writes one prepared packet, such as one built by AppendEvent.
func (c *Conn) Send(packet []byte) error { return c.write(packet) }

// Answer acks the relay's event ackID with the values of a JSON array.
func (c *Conn) Answer(ackID int64, array []byte) error {
	var b [64]byte
	p := AppendAck(b[:0], ackID, array)
	return c.write(p)
}

// Emit sends an event without an ack; args are encoded as JSON.
func (c *Conn) Emit(event string, args ...any) error {
	data, err := json.Marshal(append([]any{event}, args...))
	if err != nil {
		return err
	}
	return c.write(AppendEvent(nil, NoAck, data))
}

// Call sends an event with an ack and waits for the answer's values (a
// JSON array) until ctx ends or the connection closes.
func (c *Conn) Call(ctx context.Context, event string, args ...any) ([]byte, error) {
	data, err := json.Marshal(append([]any{event}, args...))
	if err != nil {
		return nil, err
	}
	ch := make(chan []byte, 1)
	c.cmu.Lock()
	id := c.nextCall
	c.nextCall++
	c.calls[id] = ch
	c.cmu.Unlock()
	forget := func() {
		c.cmu.Lock()
		delete(c.calls, id)
		c.cmu.Unlock()
	}
	if err := c.write(AppendEvent(nil, id, data)); err != nil {
		forget()
		return nil, err
	}
	select {
	case ans := <-ch:
		return ans, nil
	case <-c.done:
		forget()
		return nil, fmt.Errorf("%s: connection closed before the ack of %s: %w", c.ID, event, c.Err())
	case <-ctx.Done():
		forget()
		return nil, fmt.Errorf("%s: no ack for %s: %w", c.ID, event, ctx.Err())
	}
}

// Done is closed when the connection has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended, nil while it is open or after Close.
func (c *Conn) Err() error {
	if c.closing.Load() {
		return nil
	}
	if b, ok := c.errv.Load().(errBox); ok {
		return b.error
	}
	return nil
}

// Close closes the connection at once (no close frame: the relay sees the
// transport end, as when a device drops). It is safe to call more than once.
func (c *Conn) Close() error {
	c.closing.Store(true)
	return c.ws.Close()
}

// AppendEvent appends a socket.io event packet, "42" [ack id] array, where
// array is the JSON array [name, args...]; ackID NoAck sends none.
func AppendEvent(dst []byte, ackID int64, array []byte) []byte {
	dst = append(dst, '4', '2')
	if ackID >= 0 {
		dst = strconv.AppendInt(dst, ackID, 10)
	}
	return append(dst, array...)
}

// AppendAck appends a socket.io ack packet, "43" ack id array.
func AppendAck(dst []byte, ackID int64, array []byte) []byte {
	dst = append(dst, '4', '3')
	dst = strconv.AppendInt(dst, ackID, 10)
	return append(dst, array...)
}

func truncate(b []byte) []byte {
	if len(b) > 200 {
		return b[:200]
	}
	return b
}

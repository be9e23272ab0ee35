// Package relaytest has in-memory stand-ins for what the relay core talks
// to: a Conn that records what the relay sends and lets a test answer its
// acks, and a Clock whose time moves only when the test says. With them a
// relay's protocol flows run with no sockets and no waiting.
package relaytest

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server"
)

// Sent is one event the relay sent to a Conn.
type Sent struct {
	Event string
	Args  protocol.Args
	ack   func(protocol.Args) // nil when the relay asked for no answer
	conn  *Conn
}

// WantsAck reports whether the relay asked for an answer.
func (s Sent) WantsAck() bool { return s.ack != nil }

// Answer calls the relay's ack with vals, as the device would. It panics
// when the relay asked for no answer.
func (s Sent) Answer(vals ...any) {
	if s.ack == nil {
		panic(fmt.Sprintf("relaytest: %s carries no ack", s.Event))
	}
	s.ack(protocol.NewArgs(vals...))
}

// String is the event and its arguments: `P2P_REGISTER ["A"]`.
func (s Sent) String() string { return s.Event + " " + s.Args.String() }

// Conn is a server.Conn that records what it is sent. Its zero value is
// ready to use, on the "websocket" transport.
type Conn struct {
	mu           sync.Mutex // guards the fields below
	sent         []Sent
	disconnected int
	closed       int
	transport    string
	dead         bool
}

// Emit records the event.
func (c *Conn) Emit(event string, args protocol.Args) { c.record(Sent{Event: event, Args: args}) }

// EmitWithAck records the event with its ack, for the test to answer.
func (c *Conn) EmitWithAck(event string, args protocol.Args, ack func(protocol.Args)) {
	c.record(Sent{Event: event, Args: args, ack: ack})
}

func (c *Conn) record(s Sent) {
	s.conn = c
	c.mu.Lock()
	c.sent = append(c.sent, s)
	c.mu.Unlock()
}

// Disconnect counts the call.
func (c *Conn) Disconnect() {
	c.mu.Lock()
	c.disconnected++
	c.mu.Unlock()
}

// Disconnected returns how many times the relay disconnected the device
// for good.
func (c *Conn) Disconnected() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.disconnected
}

// Close counts the call.
func (c *Conn) Close() {
	c.mu.Lock()
	c.closed++
	c.mu.Unlock()
}

// Closed returns how many times the relay closed the transport.
func (c *Conn) Closed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Alive reports whether the device answers: true unless SetDead was
// called. It does not wait.
func (c *Conn) Alive(time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.dead
}

// SetDead makes the device stop answering, as a frozen process would.
func (c *Conn) SetDead() {
	c.mu.Lock()
	c.dead = true
	c.mu.Unlock()
}

// Transport returns the transport set with SetTransport, "websocket" by
// default.
func (c *Conn) Transport() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.transport == "" {
		return "websocket"
	}
	return c.transport
}

// SetTransport changes what Transport returns.
func (c *Conn) SetTransport(name string) {
	c.mu.Lock()
	c.transport = name
	c.mu.Unlock()
}

// Take returns what the relay sent since the last Take, and forgets it.
func (c *Conn) Take() []Sent {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.sent
	c.sent = nil
	return out
}

// Events returns the names and arguments of what the relay sent since the
// last Take, as Sent.String gives them, and forgets them.
func (c *Conn) Events() []string {
	var out []string
	for _, s := range c.Take() {
		out = append(out, s.String())
	}
	return out
}

// Clock is a server.Clock whose time moves only with Advance. Timers fire
// in Advance, in the caller's goroutine, in the order they are due.
type Clock struct {
	mu     sync.Mutex // guards now, timers, nextID
	now    time.Time
	timers map[int]*timer
	nextID int
}

type timer struct {
	c   *Clock
	id  int
	at  time.Time
	fn  func()
	seq int
}

// NewClock returns a Clock that reads start.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start, timers: make(map[int]*timer)}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f for d from now.
func (c *Clock) AfterFunc(d time.Duration, f func()) server.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextID++
	t := &timer{c: c, id: c.nextID, at: c.now.Add(d), fn: f, seq: c.nextID}
	c.timers[t.id] = t
	return t
}

// Stop cancels the timer.
func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	_, ok := t.c.timers[t.id]
	delete(t.c.timers, t.id)
	return ok
}

// Pending returns how many timers are waiting to fire.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// Advance moves the clock d forward and runs every timer due by then,
// earliest first; a timer a callback sets within the window runs too.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var due []*timer
		for _, t := range c.timers {
			if !t.at.After(end) {
				due = append(due, t)
			}
		}
		if len(due) == 0 {
			c.now = end
			c.mu.Unlock()
			return
		}
		sort.Slice(due, func(i, j int) bool {
			if !due[i].at.Equal(due[j].at) {
				return due[i].at.Before(due[j].at)
			}
			return due[i].seq < due[j].seq
		})
		t := due[0]
		delete(c.timers, t.id)
		if t.at.After(c.now) {
			c.now = t.at
		}
		c.mu.Unlock()
		t.fn()
	}
}

// Observer records the relay's events as lines: "pair_created A B".
type Observer struct {
	mu     sync.Mutex // guards events
	events []string
}

// OnEvent records e.
func (o *Observer) OnEvent(e server.Event) {
	o.mu.Lock()
	o.events = append(o.events, EventText(e))
	o.mu.Unlock()
}

// EventText writes a relay event in one line: its kind, the device, the
// peer, the reason in brackets, the code, and a device's new transport:
// "pair_ended A B (kicked)", "device_updated P websocket".
func EventText(e server.Event) string {
	s := string(e.Kind) + " " + e.ID
	if e.Peer != "" {
		s += " " + e.Peer
	}
	if e.Reason != "" {
		s += " (" + e.Reason + ")"
	}
	if e.Code != "" {
		s += " " + string(e.Code)
	}
	if e.Kind == server.DeviceUpdated && e.Device != nil {
		s += " " + e.Device.Transport
	}
	return s
}

// Take returns the events recorded since the last Take, and forgets them.
func (o *Observer) Take() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := o.events
	o.events = nil
	return out
}

// Acks records the answers to a device's requests.
type Acks struct {
	mu      sync.Mutex // guards answers
	answers []string
}

// Func returns an ack that records its answer as JSON.
func (a *Acks) Func() server.Ack {
	return func(v protocol.Args) {
		a.mu.Lock()
		a.answers = append(a.answers, v.String())
		a.mu.Unlock()
	}
}

// Take returns the answers recorded since the last Take, and forgets them.
func (a *Acks) Take() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.answers
	a.answers = nil
	return out
}

// Bus is a server.Bus between relays in one process: Send queues an
// envelope, and Flush delivers what is queued, in order, in the caller's
// goroutine, so a test decides when nodes hear from each other.
type Bus struct {
	mu     sync.Mutex // guards relays, queue, gone, hold, held
	relays map[string]*server.Relay
	queue  []queued
	gone   map[string]bool
	hold   func(node string, e server.Envelope) bool
	held   []queued
}

type queued struct {
	node string
	e    server.Envelope
}

// NewBus returns a Bus with no relays on it.
func NewBus() *Bus {
	return &Bus{relays: make(map[string]*server.Relay), gone: make(map[string]bool)}
}

// Attach puts relay r on the bus as node.
func (b *Bus) Attach(node string, r *server.Relay) {
	b.mu.Lock()
	b.relays[node] = r
	b.mu.Unlock()
}

// Send queues e for node.
func (b *Bus) Send(node string, e server.Envelope) {
	b.mu.Lock()
	b.queue = append(b.queue, queued{node, e})
	b.mu.Unlock()
}

// Kill takes node off the bus: what is sent to it, or by it, is lost.
func (b *Bus) Kill(node string) {
	b.mu.Lock()
	b.gone[node] = true
	b.mu.Unlock()
}

// Hold makes Flush set aside the envelopes for which hold returns true,
// until Release: a test can make a node hear of something late.
func (b *Bus) Hold(hold func(node string, e server.Envelope) bool) {
	b.mu.Lock()
	b.hold = hold
	b.mu.Unlock()
}

// Release ends Hold and queues what it set aside, in order, for the next
// Flush.
func (b *Bus) Release() {
	b.mu.Lock()
	b.hold = nil
	b.queue = append(b.queue, b.held...)
	b.held = nil
	b.mu.Unlock()
}

// Flush delivers every queued envelope, and those their delivery sends,
// until none is left; it returns how many it delivered.
func (b *Bus) Flush() int {
	n := 0
	for {
		b.mu.Lock()
		if len(b.queue) == 0 {
			b.mu.Unlock()
			return n
		}
		q := b.queue[0]
		b.queue = b.queue[1:]
		if b.hold != nil && b.hold(q.node, q.e) {
			b.held = append(b.held, q)
			b.mu.Unlock()
			continue
		}
		r, dead := b.relays[q.node], b.gone[q.node] || b.gone[q.e.Node]
		b.mu.Unlock()
		if r != nil && !dead {
			r.Receive(q.e)
			n++
		}
	}
}

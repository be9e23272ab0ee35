package server

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/p2prelay/p2prelay/protocol"
)

// Traffic is one thing a watched device sent or was sent: never the
// payload, only its name and size.
type Traffic struct {
	Time time.Time `json:"time"`
	ID   string    `json:"id"`  // the watched device
	Dir  string    `json:"dir"` // DirIn: from the device; DirOut: to it
	// Event is the relayed event's name, or the request's (P2P_REGISTER...).
	Event string `json:"event"`
	Size  int    `json:"size,omitempty"` // bytes of arguments, as the payload limit counts them
	// Ack is set on the answer to an acknowledged request: RTT is how long
	// it took, from the relay's forwarding to the answer.
	Ack bool          `json:"ack,omitempty"`
	RTT time.Duration `json:"rtt,omitempty"`
	// Code is set when the relay refused the request, or failed its ack,
	// and Reason says why.
	Code   protocol.Code `json:"code,omitempty"`
	Reason string        `json:"reason,omitempty"`
}

// Directions of Traffic.
const (
	DirIn  = "in"
	DirOut = "out"
)

// DefaultWatchRate bounds the Traffic a watch reports, per second.
const DefaultWatchRate = 200

// watcher receives one device's traffic.
type watcher struct {
	fn      func(Traffic)
	limit   *rate.Limiter
	dropped atomic.Uint64
}

// deviceCounters are a device's traffic counters; every field is updated
// atomically.
type deviceCounters struct {
	msgsOut  atomic.Uint64 // messages relayed to it
	bytesIn  atomic.Uint64
	bytesOut atomic.Uint64

	mu       sync.Mutex // guards refusals, logLimit, unlogged
	refusals map[protocol.Code]uint64
	logLimit *rate.Limiter // made at the first refusal
	unlogged uint64        // refusals not logged since the last that was
}

func (c *deviceCounters) refused(code protocol.Code) {
	c.mu.Lock()
	if c.refusals == nil {
		c.refusals = make(map[protocol.Code]uint64, 2)
	}
	c.refusals[code]++
	c.mu.Unlock()
}

// Refusals are logged at most refusalLogBurst at once and
// refusalLogRate a second per device; the rest are counted, and the next
// line logged says how many were not.
const (
	refusalLogRate  = 1
	refusalLogBurst = 5
)

// logRefusal says whether a refusal may be logged now, and how many were
// not since the last one that was.
func (c *deviceCounters) logRefusal(now time.Time) (unlogged uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.logLimit == nil {
		c.logLimit = rate.NewLimiter(refusalLogRate, refusalLogBurst)
	}
	if !c.logLimit.AllowN(now, 1) {
		c.unlogged++
		return 0, false
	}
	n := c.unlogged
	c.unlogged = 0
	return n, true
}

// Watch calls fn with device id's traffic, at most perSecond a second
// (0: DefaultWatchRate; the rest are counted and dropped), until the
// returned stop is called. fn runs on the relay's goroutines: it must be
// quick and must not block or call into the relay. A device has one
// watch at a time: a new one replaces the old. Watch fails OFFLINE for a
// device not on this relay.
func (r *Relay) Watch(id string, perSecond int, fn func(Traffic)) (stop func(), err error) {
	d := r.device(id)
	if d == nil {
		return nil, protocol.Errorf(protocol.CodeOffline, "device %q is not connected", id)
	}
	if perSecond <= 0 {
		perSecond = DefaultWatchRate
	}
	w := &watcher{fn: fn, limit: rate.NewLimiter(rate.Limit(perSecond), perSecond)}
	d.watch.Store(w)
	return func() { d.watch.CompareAndSwap(w, nil) }, nil
}

// tap reports t to d's watcher, if d is watched.
func (r *Relay) tap(d *device, t Traffic) {
	w := d.watch.Load()
	if w == nil {
		return
	}
	t.Time = r.clock.Now()
	if !w.limit.AllowN(t.Time, 1) {
		w.dropped.Add(1)
		return
	}
	t.ID = d.id
	w.fn(t)
}

// watched reports whether either device is watched: only then is an
// ack's round trip timed.
func watched(a, b *device) bool { return a.watch.Load() != nil || b.watch.Load() != nil }

// DeviceDetail is everything the relay knows of one device, for an
// operator looking at it.
type DeviceDetail struct {
	Device
	MessagesIn  uint64                   `json:"messages_in"`  // messages it relayed
	MessagesOut uint64                   `json:"messages_out"` // messages relayed to it
	BytesIn     uint64                   `json:"bytes_in"`
	BytesOut    uint64                   `json:"bytes_out"`
	AcksOwed    int                      `json:"acks_owed"`    // requests relayed to it awaiting its answer
	AcksAwaited int                      `json:"acks_awaited"` // its requests awaiting its peer's answer
	Held        int                      `json:"held"`         // messages held for it while it is away
	Refusals    map[protocol.Code]uint64 `json:"refusals"`     // its refused requests, by code
	Watched     bool                     `json:"watched"`
	Dropped     uint64                   `json:"dropped"` // traffic its watch left out, over the rate
}

// Detail returns what the relay knows of device id.
func (r *Relay) Detail(id string) (DeviceDetail, bool) {
	rec, ok := r.store.Get(id)
	if !ok {
		return DeviceDetail{}, false
	}
	out := DeviceDetail{Device: rec, Refusals: map[protocol.Code]uint64{}}
	d := r.device(id)
	if d == nil {
		return out, true
	}
	if s := d.cur.Load(); s != nil {
		out.Transport = s.conn.Transport()
	}
	out.MessagesIn = d.sent.Load()
	out.MessagesOut = d.counters.msgsOut.Load()
	out.BytesIn = d.counters.bytesIn.Load()
	out.BytesOut = d.counters.bytesOut.Load()
	d.counters.mu.Lock()
	for c, n := range d.counters.refusals {
		out.Refusals[c] = n
	}
	d.counters.mu.Unlock()
	d.mu.Lock()
	out.AcksOwed = len(d.acks)
	out.Held = len(d.held)
	d.mu.Unlock()
	if w := d.watch.Load(); w != nil {
		out.Watched, out.Dropped = true, w.dropped.Load()
	}
	if p := r.device(rec.Peer); p != nil && rec.Peer != "" {
		p.mu.Lock()
		for _, a := range p.acks {
			if a.src == d {
				out.AcksAwaited++
			}
		}
		p.mu.Unlock()
	}
	return out, true
}

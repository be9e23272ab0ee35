package peer

import (
	"errors"
	"sync"
	"sync/atomic"

	sio "github.com/zishang520/socket.io/servers/socket/v3"
)

// Event is an event the peer sent this device.
type Event struct {
	Name string
	Args []any
	// From is the device this one was paired with when the event arrived.
	From string

	reply *reply
}

// reply answers one event's acknowledgement, at most once.
type reply struct {
	fn   sio.Ack
	done atomic.Bool
}

// Errors of Event.Ack.
var (
	errNoAck       = errors.New("peer: the sender wants no acknowledgement")
	errAckAnswered = errors.New("peer: the acknowledgement was already answered")
)

// WantsAck reports whether the sender waits for an acknowledgement.
func (e Event) WantsAck() bool { return e.reply != nil }

// Ack answers the sender's acknowledgement with args, which reach the
// sender unchanged and in order. It may be called from any goroutine, once;
// it fails when the sender wanted no acknowledgement or it was answered.
func (e Event) Ack(args ...any) error {
	if e.reply == nil {
		return errNoAck
	}
	if !e.reply.done.CompareAndSwap(false, true) {
		return errAckAnswered
	}
	if args == nil {
		args = []any{}
	}
	e.reply.fn(args, nil)
	return nil
}

// NoticeKind says what changed.
type NoticeKind int

// The kinds of Notice.
const (
	// Paired: the device is paired with Notice.Peer.
	Paired NoticeKind = iota + 1
	// Unpaired: the pair with Notice.Peer ended, for Notice.Reason.
	Unpaired
	// PairRequest: Notice.Peer asked to pair; Notice.Accepted says the
	// answer.
	PairRequest
	// Disconnected: the connection dropped (Notice.Reason, Notice.Err) and
	// the peer is reconnecting. A pair is kept meanwhile: the relay holds
	// it for a while (its resume window), and says whether it did once the
	// device is back (Resumed or Unpaired).
	Disconnected
	// Reconnected: the device is connected and registered again.
	// Notice.Peer is the device it was paired with when the connection
	// dropped (Resumed or Unpaired follows), or whose pair the relay ended
	// as it shut down, if any.
	Reconnected
	// Closed: the peer stopped for good; Notice.Err says why (nil after
	// Close): the relay closed it (KICKED, TAKEN_OVER), refused it as it
	// reconnected (UNAUTHORIZED, BAD_ID), or the connection dropped with
	// NoReconnect set.
	Closed
	// Resumed: after a reconnect, the relay said it kept the pair with
	// Notice.Peer; what the peer sent meanwhile is delivered, in order.
	Resumed
	// PairFailed: pairing again with Notice.Peer by itself (Config.Repair)
	// failed for Notice.Err; the peer stays unpaired.
	PairFailed
)

// String names the kind.
func (k NoticeKind) String() string {
	switch k {
	case Paired:
		return "paired"
	case Unpaired:
		return "unpaired"
	case PairRequest:
		return "pair_request"
	case Disconnected:
		return "disconnected"
	case Reconnected:
		return "reconnected"
	case Closed:
		return "closed"
	case Resumed:
		return "resumed"
	case PairFailed:
		return "pair_failed"
	}
	return "unknown"
}

// Reason says why a pair ended.
type Reason string

// Why a pair ends.
const (
	// ReasonUnregistered: this device unpaired (Unpair).
	ReasonUnregistered Reason = "unregistered"
	// ReasonEnded: the peer unpaired, or an operator broke the pair (the
	// relay sent P2P_UNREGISTER).
	ReasonEnded Reason = "ended"
	// ReasonPeerGone: the peer disconnected, or the relay ended the pair
	// (P2P_DISCONNECT).
	ReasonPeerGone Reason = "peer_gone"
	// ReasonConnectionLost: this device's connection dropped and the relay
	// did not keep the pair (or the peer stopped for good).
	ReasonConnectionLost Reason = "connection_lost"
)

// Notice is a change of the peer's state.
type Notice struct {
	Kind     NoticeKind
	Peer     string // the other device, when there is one
	Reason   string // Unpaired: a Reason; Disconnected: the transport's reason
	Accepted bool   // PairRequest: the answer
	Err      error  // Disconnected, Closed: the relay's refusal, if any; PairFailed: why
}

// dispatcher runs callbacks one at a time, in order, on its own goroutine,
// so the socket's goroutine never waits for a handler. Its queue is
// unbounded: a handler may wait for an acknowledgement, which arrives on
// the socket's goroutine, without deadlocking it.
type dispatcher struct {
	mu      sync.Mutex // guards queue and closing
	queue   []func()
	closing bool
	wake    chan struct{}
	done    chan struct{}
}

func newDispatcher() *dispatcher {
	d := &dispatcher{wake: make(chan struct{}, 1), done: make(chan struct{})}
	go d.run()
	return d
}

// push queues f; it is dropped once the dispatcher is closing.
func (d *dispatcher) push(f func()) {
	d.mu.Lock()
	if d.closing {
		d.mu.Unlock()
		return
	}
	d.queue = append(d.queue, f)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// close stops the dispatcher once the queued callbacks have run; done is
// closed then.
func (d *dispatcher) close() {
	d.mu.Lock()
	d.closing = true
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *dispatcher) run() {
	defer close(d.done)
	for {
		d.mu.Lock()
		batch := d.queue
		d.queue = nil
		closing := d.closing
		d.mu.Unlock()
		for _, f := range batch {
			f()
		}
		if len(batch) > 0 {
			continue
		}
		if closing {
			return
		}
		<-d.wake
	}
}

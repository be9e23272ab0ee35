// Package server is the P2P relay core: devices connect with an id, pair
// 1:1 through it, and send events to their peer with acknowledgements piped
// back. It implements the wire protocol of docs/PROTOCOL.md for both client
// generations, and knows nothing of socket.io: it talks to connections
// through the small Conn interface, keeps state in a Store, takes its time
// from a Clock and reports what happens to an Observer. Package
// server/socketio binds it to a socket.io server.
//
// # Who owns what
//
//   - The Store owns devices, pairs and pairing handshakes: who is
//     connected, who is paired with whom, who is asking whom. It is the one
//     place a handshake is known; each Store method is atomic.
//   - Relay.order is held across every call that changes Store state,
//     the change of Relay.sessions that goes with it, and the publication
//     of the events that report it, so observers see events in the order
//     the changes happened. Routing a message takes no relay lock.
//   - Relay.sessions maps a device id to its live Session on this relay.
//     It is written only with order held and read without a lock.
//   - Session.mu guards what belongs to one connection: the acks it owes
//     (relayed requests awaiting its answer), the answer its own pairing
//     request awaits, and whether it has ended. Lock order: order before
//     any Session.mu, and never two Session.mu at once.
package server

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/p2prelay/p2prelay/protocol"
)

// Conn is the relay's view of one device connection. The socket.io binding
// implements it; tests may use a fake. Its methods must be safe for
// concurrent use and must not block on the remote side.
type Conn interface {
	// Emit sends an event with arguments.
	Emit(event string, args protocol.Args)
	// EmitWithAck sends an event and asks for an answer; ack runs at most
	// once, with the values the device answered.
	EmitWithAck(event string, args protocol.Args, ack func(protocol.Args))
	// Disconnect closes the connection. The relay still expects Leave.
	Disconnect()
	// Transport names the current transport ("polling", "websocket").
	Transport() string
}

// Ack answers a device's request; nil when the request carried none.
type Ack func(protocol.Args)

// answer calls ack with vals, if there is an ack.
func (ack Ack) answer(vals ...any) {
	if ack != nil {
		ack(protocol.NewArgs(vals...))
	}
}

// ConnInfo describes a connecting device.
type ConnInfo struct {
	DeviceID string
	ConnID   string // unique per connection
	Gen      protocol.Generation
	Address  string
	EngineIO int
	Token    string // device token, when the device sent one
}

// Relay is the transport-independent relay core. Create it with New; feed it
// connections with Join, their events with Handle, and their end with Leave.
type Relay struct {
	cfg   Config
	log   *slog.Logger
	store Store
	obs   Observer
	clock Clock

	order    sync.Mutex // see "Who owns what" in the package comment
	sessions sync.Map   // device id -> *Session; written with order held

	closing atomic.Bool
	stats   *stats
}

// Session is one device's live connection to the relay.
type Session struct {
	id     string
	connID string
	gen    protocol.Generation
	conn   Conn

	sent     atomic.Uint64 // messages this device relayed
	pairSent atomic.Uint64 // messages relayed since its current pair began

	limit     *rate.Limiter // requests; nil when unlimited
	pairLimit *rate.Limiter // pairing requests; nil when unlimited

	mu      sync.Mutex // guards acks, nextAck, asking, closed
	acks    map[uint64]*pendingAck
	nextAck uint64
	asking  *asking // this device's pairing request awaiting its answer
	closed  bool
}

// ID returns the device id.
func (s *Session) ID() string { return s.id }

// Generation returns the protocol generation the device speaks.
func (s *Session) Generation() protocol.Generation { return s.gen }

// emit sends the device a relay-made event.
func (s *Session) emit(event string, vals ...any) { s.conn.Emit(event, protocol.NewArgs(vals...)) }

// asking is a device's own pairing request under way: the handshake the
// Store knows by id, and what answers the device when it settles.
type asking struct {
	shake uint64
	ack   Ack
	timer Timer
}

// pendingAck is a relayed request awaiting its target's answer.
type pendingAck struct {
	src   *Session
	ack   Ack
	timer Timer
}

// New returns a Relay. It fails only for an invalid Config.
func New(cfg Config) (*Relay, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Relay{
		cfg:   cfg,
		log:   cfg.Logger,
		store: cfg.Store,
		obs:   cfg.Observer,
		clock: cfg.Clock,
		stats: newStats(),
	}, nil
}

// admit decides whether a device may connect, and whether it takes over
// an id in use: with device tokens, a valid token always does; without,
// the duplicate-id policy says.
func (r *Relay) admit(info ConnInfo) (takeover bool, err error) {
	if r.closing.Load() {
		return false, protocol.Errorf(protocol.CodeShuttingDown, "the relay is shutting down")
	}
	_, inUse := r.store.Get(info.DeviceID)
	switch {
	case r.cfg.Tokens != nil && info.Token == "" && inUse:
		return false, protocol.Errorf(protocol.CodeIDInUse, "device id %q is already connected; present its token to reclaim it", info.DeviceID)
	case r.cfg.Tokens != nil:
		if err := r.cfg.Tokens.Verify(info.Token, info.DeviceID); err != nil {
			return false, err
		}
		takeover = true
	case r.cfg.DuplicateID == DuplicateTakeover:
		takeover = true
	case inUse:
		return false, protocol.Errorf(protocol.CodeIDInUse, "device id %q is already connected", info.DeviceID)
	}
	if r.cfg.MaxDevices > 0 && !(takeover && inUse) && r.store.Len() >= r.cfg.MaxDevices {
		return false, protocol.Errorf(protocol.CodeServerFull, "the relay is at its limit of %d devices", r.cfg.MaxDevices)
	}
	return takeover, nil
}

// RefuseConn counts and logs a connection refused before it could join
// (a bad id, say), and returns the refusal to tell the device.
func (r *Relay) RefuseConn(addr string, err error) *protocol.Error {
	pe := protocol.AsError(err)
	r.stats.refusal(pe.Code)
	r.log.Info("connection refused", "addr", addr, "code", string(pe.Code), "reason", pe.Message)
	return pe
}

// Join registers a connected device. On error, which RefuseConn has
// counted and logged, the caller must tell the device and close the
// connection.
func (r *Relay) Join(info ConnInfo, c Conn) (*Session, error) {
	dev := Device{
		ID:          info.DeviceID,
		ConnID:      info.ConnID,
		Gen:         info.Gen,
		Address:     info.Address,
		Transport:   c.Transport(),
		EngineIO:    info.EngineIO,
		ConnectedAt: r.clock.Now(),
	}
	s := &Session{id: info.DeviceID, connID: info.ConnID, gen: info.Gen, conn: c, acks: make(map[uint64]*pendingAck)}
	if r.cfg.Rate > 0 {
		s.limit = rate.NewLimiter(rate.Limit(r.cfg.Rate), r.cfg.Burst)
	}
	if r.cfg.PairRate > 0 {
		s.pairLimit = rate.NewLimiter(rate.Limit(r.cfg.PairRate), r.cfg.PairBurst)
	}

	r.order.Lock()
	takeover, err := r.admit(info)
	var td *Teardown
	if err == nil {
		td, err = r.store.Add(dev, takeover)
	}
	if err != nil {
		r.order.Unlock()
		return nil, r.RefuseConn(info.Address, err)
	}
	old := r.session(s.id)
	r.sessions.Store(s.id, s)
	if td != nil {
		r.publishTeardown(td, "taken over", ReasonTakeover)
	}
	r.publish(Event{Kind: DeviceConnected, Device: &dev, ID: s.id})
	r.order.Unlock()

	if td != nil && old != nil {
		r.log.Info("device id taken over", "id", s.id, "old_conn", old.connID, "new_conn", s.connID)
		old.emit(protocol.EventServerError, protocol.Errorf(protocol.CodeTakenOver, "device id %q was claimed by a new connection", s.id).Error())
		r.endSession(old, td, "taken over")
		old.conn.Disconnect()
	}
	r.stats.connects.Add(1)
	r.log.Info("device connected", "id", s.id, "gen", s.gen.String(), "addr", info.Address, "transport", dev.Transport, "eio", info.EngineIO)
	return s, nil
}

// Leave ends a session whose connection closed. It is safe to call more
// than once.
func (r *Relay) Leave(s *Session, reason string) {
	r.endSession(s, r.remove(s, reason, ReasonDisconnect), reason)
}

// remove takes s's device out of the store, if s still holds it, and
// publishes what that ended. It returns the teardown, nil when s no longer
// held the id.
func (r *Relay) remove(s *Session, reason, pairReason string) *Teardown {
	r.order.Lock()
	defer r.order.Unlock()
	r.sessions.CompareAndDelete(s.id, s)
	td, ok := r.store.Remove(s.id, s.connID)
	if !ok {
		return nil
	}
	r.publishTeardown(td, reason, pairReason)
	return td
}

// publishTeardown publishes, in order, what a device's removal ended: its
// pair, its handshakes, then the device itself. r.order must be held.
func (r *Relay) publishTeardown(td *Teardown, reason, pairReason string) {
	id := td.Device.ID
	if td.Pair != nil {
		r.publish(Event{Kind: PairEnded, ID: td.Pair.A, Peer: td.Pair.B, Reason: pairReason})
	}
	for _, hs := range td.Handshakes {
		if hs.Dst == id {
			r.stats.pairOutcome(protocol.CodeOffline)
		}
		r.publish(Event{Kind: PairRefused, ID: hs.Src, Peer: hs.Dst, Code: protocol.CodeOffline})
	}
	r.publish(Event{Kind: DeviceDisconnected, ID: id, Reason: reason})
}

// endSession tears a session down after its device left the store: it
// fails the acks waiting on it, drops its own pairing request, tells its
// peer, and answers the sources of the handshakes it was the target of.
// td is what the store removal ended, nil when there was nothing.
func (r *Relay) endSession(s *Session, td *Teardown, reason string) {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	acks := s.acks
	s.acks = nil
	ask := s.asking
	s.asking = nil
	s.mu.Unlock()
	if ask != nil {
		ask.timer.Stop()
	}
	// Taking the map made these acks ours to answer: a timer that fires now
	// finds nothing to take.
	for _, p := range acks {
		p.timer.Stop()
		r.failAck(p, protocol.Errorf(protocol.CodeOffline, "device %q disconnected before answering", s.id))
	}
	if td == nil {
		if !already {
			r.log.Debug("session ended without store record", "id", s.id, "reason", reason)
		}
		return
	}
	if td.Pair != nil {
		if ps := r.session(td.Pair.Other(s.id)); ps != nil {
			ps.emit(protocol.EventDisconnect)
		}
		r.log.Info("pair ended", "a", td.Pair.A, "b", td.Pair.B, "reason", reason)
	}
	for _, hs := range td.Handshakes {
		if hs.Dst != s.id {
			continue // its own request: dropped above
		}
		if src := r.session(hs.Src); src != nil {
			if a := src.takeAsking(hs.ID); a != nil {
				a.timer.Stop()
				r.refuse(src, protocol.Errorf(protocol.CodeOffline, "device %q disconnected during pairing", s.id), a.ack, ackFalse)
			}
		}
	}
	r.stats.disconnects.Add(1)
	r.log.Info("device disconnected", "id", s.id, "reason", reason)
}

// TransportChanged publishes a device's new transport (after an upgrade
// from polling to websocket).
func (r *Relay) TransportChanged(s *Session) {
	r.order.Lock()
	defer r.order.Unlock()
	d, ok := r.store.Get(s.id)
	if !ok || d.ConnID != s.connID {
		return
	}
	d.Transport = s.conn.Transport()
	r.publish(Event{Kind: DeviceUpdated, ID: s.id, Device: &d})
}

// Handle processes one event from a device. ack is nil when the device sent
// none. Handle never panics on device input: every bad request is refused
// with a SERVER_ERROR and its ack, if any, answered.
func (r *Relay) Handle(s *Session, event string, args protocol.Args, ack Ack) {
	answer := event == protocol.EventRegisterSuccess || event == protocol.EventRegisterFailed
	if !answer && s.limit != nil && !s.limit.AllowN(r.clock.Now(), 1) {
		shape := ackError
		if event == protocol.EventRegister || event == protocol.EventUnregister {
			shape = ackFalse
		}
		r.refuse(s, protocol.Errorf(protocol.CodeRateLimited, "more than %g requests a second", r.cfg.Rate), ack, shape)
		return
	}
	switch event {
	case protocol.EventRegister:
		r.handleRegister(s, args, ack)
	case protocol.EventRegisterSuccess, protocol.EventRegisterFailed:
		r.handleGen1Answer(s, event == protocol.EventRegisterSuccess, ack)
	case protocol.EventUnregister:
		r.handleUnregister(s, ack)
	case protocol.EventEmit:
		r.handleEmit(s, args, ack, false)
	case protocol.EventEmitAck:
		r.handleEmit(s, args, ack, true)
	case protocol.EventListClients:
		r.handleListClients(s, ack)
	case protocol.EventListDevices:
		r.handleListDevices(s, args, ack)
	default:
		r.refuse(s, protocol.Errorf(protocol.CodeUnknownEvent, "unknown event %q", truncate(event, 64)), ack, ackError)
	}
}

// ackShape says how a refused request's ack is answered.
type ackShape int

const (
	ackFalse ackShape = iota // P2P_REGISTER, P2P_UNREGISTER: false, {"error": {...}}
	ackError                 // relay requests: {"error": {...}}
)

// refuse tells s why its request was refused and answers its ack.
func (r *Relay) refuse(s *Session, err *protocol.Error, ack Ack, shape ackShape) {
	r.stats.refusal(err.Code)
	r.log.Info("request refused", "id", s.id, "code", string(err.Code), "reason", err.Message)
	s.emit(protocol.EventServerError, err.Error())
	switch shape {
	case ackFalse:
		// The original clients read only the first value; the error object
		// after it tells newer ones why without relying on SERVER_ERROR.
		ack.answer(false, err.AckPayload())
	default:
		ack.answer(err.AckPayload())
	}
}

// session returns the live session holding id on this relay, nil if none.
func (r *Relay) session(id string) *Session {
	if v, ok := r.sessions.Load(id); ok {
		return v.(*Session)
	}
	return nil
}

// publish stamps e and hands it to the observer. r.order must be held.
func (r *Relay) publish(e Event) {
	e.Time = r.clock.Now()
	r.obs.OnEvent(e)
}

// truncate shortens s to at most n runes for logs and messages.
func truncate(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return s[:j] + "…"
		}
		i++
	}
	return s
}

// after runs f once d has passed, on the relay's clock.
func (r *Relay) after(d time.Duration, f func()) Timer { return r.clock.AfterFunc(d, f) }

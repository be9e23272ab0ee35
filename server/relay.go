// Package server is the P2P relay: devices connect with an id, pair 1:1
// through it, and send events to their peer with acknowledgements piped
// back. It implements the wire protocol of protocol/PROTOCOL.md for both
// client generations.
//
// The core (Relay) talks to connections through the small Conn interface;
// Attach binds it to a socket.io server's default namespace.
package server

import (
	"context"
	"log/slog"
	"sort"
	"strconv"
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
	Emit(event string, args ...any)
	// EmitWithAck sends an event whose last argument is an ack callback;
	// ack runs at most once, with the values the device answered.
	EmitWithAck(event string, args []any, ack func(args []any))
	// Disconnect closes the connection. The relay still expects Leave.
	Disconnect()
	// Transport names the current transport ("polling", "websocket").
	Transport() string
}

// Ack answers a device's request; nil when the request carried none.
type Ack func(args ...any)

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

	// order is held across every change of device and pair state and the
	// publication of the events that report it, so observers receive the
	// events in the order the changes happened. It is taken before hmu.
	order sync.Mutex

	mu       sync.RWMutex // guards sessions
	sessions map[string]*Session

	hmu    sync.Mutex // guards shakes; held across BeginPair and registration
	shakes map[uint64]*pendingShake

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

	mu      sync.Mutex // guards acks, nextAck, closed
	acks    map[uint64]*pendingAck
	nextAck uint64
	closed  bool
}

// ID returns the device id.
func (s *Session) ID() string { return s.id }

// Generation returns the protocol generation the device speaks.
func (s *Session) Generation() protocol.Generation { return s.gen }

type pendingShake struct {
	hs     Handshake
	srcAck Ack
	timer  *time.Timer
}

type pendingAck struct {
	src   *Session
	ack   Ack
	timer *time.Timer
}

// New returns a Relay. It fails only for an invalid Config.
func New(cfg Config) (*Relay, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Relay{
		cfg:      cfg,
		log:      cfg.Logger,
		store:    cfg.Store,
		obs:      cfg.Observer,
		sessions: make(map[string]*Session),
		shakes:   make(map[uint64]*pendingShake),
		stats:    newStats(),
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

// Join registers a connected device. On error the caller must tell the
// device (SERVER_ERROR) and close the connection.
func (r *Relay) Join(info ConnInfo, c Conn) (*Session, error) {
	dev := Device{
		ID:          info.DeviceID,
		ConnID:      info.ConnID,
		Gen:         info.Gen,
		Address:     info.Address,
		Transport:   c.Transport(),
		EngineIO:    info.EngineIO,
		ConnectedAt: r.cfg.Now(),
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
		r.stats.refusal(protocol.CodeOf(err))
		return nil, err
	}
	r.mu.Lock()
	old := r.sessions[s.id]
	r.sessions[s.id] = s
	r.mu.Unlock()
	if td != nil {
		r.publishTeardown(td, "taken over", ReasonTakeover)
	}
	r.publish(Event{Kind: DeviceConnected, Device: &dev, ID: s.id})
	r.order.Unlock()

	if td != nil && old != nil {
		r.log.Info("device id taken over", "id", s.id, "old_conn", old.connID, "new_conn", s.connID)
		old.conn.Emit(protocol.EventServerError, protocol.Errorf(protocol.CodeTakenOver, "device id %q was claimed by a new connection", s.id).Error())
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
// forgets the session, fails the acks waiting on it, tells its peer, and
// answers the sources of the handshakes it was the target of. td is what
// the store removal ended, nil when there was nothing.
func (r *Relay) endSession(s *Session, td *Teardown, reason string) {
	r.mu.Lock()
	if r.sessions[s.id] == s {
		delete(r.sessions, s.id)
	}
	r.mu.Unlock()

	s.mu.Lock()
	already := s.closed
	s.closed = true
	acks := s.acks
	s.acks = nil
	s.mu.Unlock()
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
		if os := r.session(td.Pair.Other(s.id)); os != nil {
			os.conn.Emit(protocol.EventDisconnect)
		}
		r.log.Info("pair ended", "a", td.Pair.A, "b", td.Pair.B, "reason", reason)
	}
	for _, hs := range td.Handshakes {
		ps := r.takeShake(hs.ID)
		if ps == nil {
			continue
		}
		ps.timer.Stop()
		if hs.Dst == s.id {
			r.answerSource(hs, ps.srcAck, protocol.Errorf(protocol.CodeOffline, "device %q disconnected during pairing", s.id))
		}
	}
	r.stats.disconnects.Add(1)
	r.log.Info("device disconnected", "id", s.id, "reason", reason)
}

// transportChanged publishes a device's new transport (after an upgrade
// from polling to websocket).
func (r *Relay) transportChanged(s *Session) {
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
func (r *Relay) Handle(s *Session, event string, args []any, ack Ack) {
	answer := event == protocol.EventRegisterSuccess || event == protocol.EventRegisterFailed
	if !answer && s.limit != nil && !s.limit.Allow() {
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
	s.conn.Emit(protocol.EventServerError, err.Error())
	if ack == nil {
		return
	}
	switch shape {
	case ackFalse:
		// The original clients read only the first value; the error object
		// after it tells newer ones why without relying on SERVER_ERROR.
		ack(false, err.AckPayload())
	default:
		ack(err.AckPayload())
	}
}

func (r *Relay) handleRegister(s *Session, args []any, ack Ack) {
	if ack == nil {
		r.refuse(s, protocol.Errorf(protocol.CodeBadRequest, "P2P_REGISTER needs an ack callback"), nil, ackFalse)
		return
	}
	if len(args) == 0 {
		r.refuse(s, protocol.Errorf(protocol.CodeBadRequest, "P2P_REGISTER needs a target id"), ack, ackFalse)
		return
	}
	target, err := protocol.ParseTarget(args[0])
	if err != nil {
		r.refuse(s, protocol.AsError(err), ack, ackFalse)
		return
	}
	if s.pairLimit != nil && !s.pairLimit.Allow() {
		r.refuse(s, protocol.Errorf(protocol.CodeRateLimited, "more than %g pairing requests a second", r.cfg.PairRate), ack, ackFalse)
		return
	}

	r.order.Lock()
	r.hmu.Lock()
	res, err := r.store.BeginPair(s.id, target)
	var crossed *pendingShake
	if err == nil && res.Handshake != nil {
		ps := &pendingShake{hs: *res.Handshake, srcAck: ack}
		id := res.Handshake.ID
		ps.timer = time.AfterFunc(r.cfg.PairTimeout, func() { r.timeoutShake(id) })
		r.shakes[id] = ps
	}
	if res.Crossed != nil {
		crossed = r.shakes[res.Crossed.ID]
		delete(r.shakes, res.Crossed.ID)
	}
	r.hmu.Unlock()
	var perr *protocol.Error
	switch {
	case err != nil:
		perr = protocol.AsError(err)
		r.stats.pairOutcome(perr.Code)
		r.publish(Event{Kind: PairRefused, ID: s.id, Peer: target, Code: perr.Code})
	case res.Pair != nil:
		r.paired(*res.Pair)
	case res.Handshake != nil:
		r.publish(Event{Kind: PairRequested, ID: s.id, Peer: target})
	}
	r.order.Unlock()

	switch {
	case perr != nil:
		r.refuse(s, perr, ack, ackFalse)
	case res.Already:
		ack(true)
	case res.Pair != nil:
		if crossed != nil {
			crossed.timer.Stop()
			crossed.srcAck(true)
		}
		r.log.Info("paired", "a", res.Pair.A, "b", res.Pair.B)
		ack(true)
	default:
		r.askTarget(*res.Handshake)
	}
}

// askTarget sends the pairing request to the target, listening for both a
// generation-2 ack answer and (through handleGen1Answer) a generation-1
// event answer; the first one counts.
func (r *Relay) askTarget(hs Handshake) {
	t := r.session(hs.Dst)
	if t == nil {
		r.settleShake(hs.ID, false, protocol.Errorf(protocol.CodeOffline, "device %q is offline", hs.Dst))
		return
	}
	r.log.Debug("asking target to pair", "src", hs.Src, "dst", hs.Dst)
	t.conn.EmitWithAck(protocol.EventRegister, []any{hs.Src}, func(answer []any) {
		accept := len(answer) > 0 && isTrue(answer[0])
		r.targetAnswered(t, hs, accept)
	})
}

func (r *Relay) handleGen1Answer(s *Session, accept bool, ack Ack) {
	hs, ok := r.store.Incoming(s.id)
	if !ok {
		// A late answer to a request that already ended. A generation-1
		// answer names no source, so a late "yes" from a device without a
		// peer is answered with P2P_DISCONNECT: it may have taken the
		// source as its target, and must learn the pair did not form.
		r.log.Debug("pairing answer with no request under way", "id", s.id, "accept", accept)
		if _, paired := r.store.Peer(s.id); accept && !paired {
			s.conn.Emit(protocol.EventDisconnect)
		}
		if ack != nil {
			ack()
		}
		return
	}
	r.targetAnswered(s, hs, accept)
	if ack != nil {
		ack()
	}
}

// targetAnswered settles handshake hs with the target's answer. A "yes"
// that comes too late is answered with P2P_DISCONNECT, so a target that
// took the source as its peer learns the pair did not form, unless the two
// are paired anyway (both asked each other at once).
func (r *Relay) targetAnswered(t *Session, hs Handshake, accept bool) {
	if r.settleShake(hs.ID, accept, nil) || !accept {
		return
	}
	if peer, ok := r.store.Peer(t.id); ok && peer == hs.Src {
		return
	}
	r.log.Debug("late pairing answer", "id", t.id, "src", hs.Src)
	t.conn.Emit(protocol.EventDisconnect)
}

func (r *Relay) timeoutShake(id uint64) {
	r.hmu.Lock()
	ps := r.shakes[id]
	r.hmu.Unlock()
	if ps == nil {
		return
	}
	r.settleShake(id, false, protocol.Errorf(protocol.CodeTimeout, "device %q did not answer within %s", ps.hs.Dst, r.cfg.PairTimeout))
}

// settleShake ends handshake id: accepted, it forms the pair and answers the
// source true; otherwise it answers false with refusal. It reports false
// when the handshake had already ended.
func (r *Relay) settleShake(id uint64, accept bool, refusal *protocol.Error) bool {
	r.order.Lock()
	out, err := r.store.EndPair(id, accept)
	if err != nil {
		r.order.Unlock()
		return false
	}
	if out.Pair != nil {
		r.paired(*out.Pair)
	} else {
		if refusal == nil {
			refusal = protocol.Errorf(protocol.CodeRefused, "device %q refused to pair", out.Handshake.Dst)
		}
		r.stats.pairOutcome(refusal.Code)
		r.publish(Event{Kind: PairRefused, ID: out.Handshake.Src, Peer: out.Handshake.Dst, Code: refusal.Code})
	}
	r.order.Unlock()

	ps := r.takeShake(id)
	if ps == nil {
		// Store and relay disagree only if the store is shared and another
		// node settled it; there is no ack here to answer.
		return false
	}
	ps.timer.Stop()
	if out.Pair != nil {
		r.log.Info("paired", "a", out.Pair.A, "b", out.Pair.B)
		ps.srcAck(true)
		return true
	}
	r.answerSource(out.Handshake, ps.srcAck, refusal)
	return true
}

// answerSource tells a pairing source its request failed; the refusal
// was counted and published when the handshake ended.
func (r *Relay) answerSource(hs Handshake, srcAck Ack, refusal *protocol.Error) {
	if src := r.session(hs.Src); src != nil {
		r.refuse(src, refusal, srcAck, ackFalse)
	}
}

func (r *Relay) takeShake(id uint64) *pendingShake {
	r.hmu.Lock()
	defer r.hmu.Unlock()
	ps := r.shakes[id]
	delete(r.shakes, id)
	return ps
}

// paired resets a new pair's counters and publishes it. r.order must be
// held.
func (r *Relay) paired(p Pair) {
	for _, id := range [...]string{p.A, p.B} {
		if s := r.session(id); s != nil {
			s.pairSent.Store(0)
		}
	}
	r.stats.pairOutcome("")
	r.publish(Event{Kind: PairCreated, ID: p.A, Peer: p.B})
}

func (r *Relay) handleUnregister(s *Session, ack Ack) {
	p, ok := r.unpair(s.id, ReasonUnregister)
	if !ok {
		r.refuse(s, protocol.Errorf(protocol.CodeNotPaired, "you are not paired"), ack, ackFalse)
		return
	}
	r.unpaired(p, s.id, ReasonUnregister)
	if ack != nil {
		ack(true)
	}
}

// unpair ends id's pair and publishes it.
func (r *Relay) unpair(id, reason string) (Pair, bool) {
	r.order.Lock()
	defer r.order.Unlock()
	p, ok := r.store.Unpair(id)
	if ok {
		r.publish(Event{Kind: PairEnded, ID: p.A, Peer: p.B, Reason: reason})
	}
	return p, ok
}

// unpaired tells the sides of an ended pair, except skip (the side that
// asked for it), in words their generation knows.
func (r *Relay) unpaired(p Pair, skip, reason string) {
	for _, id := range [...]string{p.A, p.B} {
		if id == skip {
			continue
		}
		s := r.session(id)
		if s == nil {
			continue
		}
		if s.gen == protocol.Gen1 {
			s.conn.Emit(protocol.EventDisconnect)
		} else {
			s.conn.EmitWithAck(protocol.EventUnregister, nil, func([]any) {})
		}
	}
	r.log.Info("pair ended", "a", p.A, "b", p.B, "reason", reason)
}

func (r *Relay) handleEmit(s *Session, args []any, ack Ack, withAck bool) {
	if withAck && ack == nil {
		r.refuse(s, protocol.Errorf(protocol.CodeBadRequest, "P2P_EMIT_ACKNOWLEDGE needs an ack callback"), nil, ackError)
		return
	}
	if len(args) == 0 {
		r.refuse(s, protocol.Errorf(protocol.CodeBadRequest, "relay request needs a payload {targetClientId, event, args}"), ack, ackError)
		return
	}
	req, err := protocol.ParseRelayRequest(args[0])
	if err != nil {
		r.refuse(s, protocol.AsError(err), ack, ackError)
		return
	}
	if perr := checkArgs(req.Args, r.cfg.MaxPayload); perr != nil {
		r.refuse(s, perr, ack, ackError)
		return
	}
	peer, ok := r.store.Peer(s.id)
	if !ok || peer != req.Target {
		r.refuse(s, protocol.Errorf(protocol.CodeNotPaired, "device %q is not your peer", req.Target), ack, ackError)
		return
	}
	t := r.session(peer)
	if t == nil {
		r.refuse(s, protocol.Errorf(protocol.CodeOffline, "device %q is offline", peer), ack, ackError)
		return
	}
	if !withAck {
		r.countRelayed(s)
		t.conn.Emit(req.Event, req.Args...)
		if ack != nil {
			ack()
		}
		return
	}
	r.forwardWithAck(s, t, req, ack)
}

// forwardWithAck relays a request whose answer is piped back to the source.
func (r *Relay) forwardWithAck(s, t *Session, req protocol.RelayRequest, ack Ack) {
	p := &pendingAck{src: s, ack: ack}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		r.refuse(s, protocol.Errorf(protocol.CodeOffline, "device %q is offline", t.id), ack, ackError)
		return
	}
	if r.cfg.MaxPendingAcks > 0 && len(t.acks) >= r.cfg.MaxPendingAcks {
		t.mu.Unlock()
		r.refuse(s, protocol.Errorf(protocol.CodeRateLimited, "device %q has %d acks unanswered", t.id, len(t.acks)), ack, ackError)
		return
	}
	t.nextAck++
	id := t.nextAck
	t.acks[id] = p
	p.timer = time.AfterFunc(r.cfg.AckTimeout, func() {
		if r.takeAck(t, id) != nil {
			r.failAck(p, protocol.Errorf(protocol.CodeTimeout, "device %q did not answer %q within %s", t.id, req.Event, r.cfg.AckTimeout))
		}
	})
	t.mu.Unlock()
	r.countRelayed(s)
	t.conn.EmitWithAck(req.Event, req.Args, func(answer []any) {
		if r.takeAck(t, id) == nil {
			return
		}
		p.timer.Stop()
		if perr := checkArgs(answer, r.cfg.MaxPayload); perr != nil {
			perr.Message = "the answer of " + strconv.Quote(t.id) + ": " + perr.Message
			r.failAck(p, perr)
			return
		}
		r.stats.acks.Add(1)
		p.ack(answer...)
	})
}

// countRelayed counts a message s sent that the relay passes on; refused
// ones count as refusals only.
func (r *Relay) countRelayed(s *Session) {
	s.sent.Add(1)
	s.pairSent.Add(1)
	r.stats.messages.Add(1)
}

func (r *Relay) takeAck(t *Session, id uint64) *pendingAck {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.acks[id]
	delete(t.acks, id)
	return p
}

// failAck answers a pending relayed ack with an error.
func (r *Relay) failAck(p *pendingAck, err *protocol.Error) {
	r.refuse(p.src, err, p.ack, ackError)
}

func (r *Relay) handleListClients(s *Session, ack Ack) {
	if ack == nil {
		r.refuse(s, protocol.Errorf(protocol.CodeBadRequest, "LIST_CLIENTS needs an ack callback"), nil, ackError)
		return
	}
	ack(r.DeviceIDs())
}

// handleListDevices answers P2P_LIST_DEVICES: ([{"available": bool}], ack)
// with [{id, available}], only the available devices when asked.
func (r *Relay) handleListDevices(s *Session, args []any, ack Ack) {
	if ack == nil {
		r.refuse(s, protocol.Errorf(protocol.CodeBadRequest, "P2P_LIST_DEVICES needs an ack callback"), nil, ackError)
		return
	}
	onlyAvailable := false
	if len(args) > 0 && args[0] != nil {
		q, ok := args[0].(map[string]any)
		if !ok {
			r.refuse(s, protocol.Errorf(protocol.CodeBadRequest, "P2P_LIST_DEVICES takes an optional object {available: bool}"), ack, ackError)
			return
		}
		if v, ok := q["available"]; ok {
			b, ok := v.(bool)
			if !ok {
				r.refuse(s, protocol.Errorf(protocol.CodeBadRequest, "available must be a boolean"), ack, ackError)
				return
			}
			onlyAvailable = b
		}
	}
	devs := r.store.Devices()
	sort.Slice(devs, func(i, j int) bool { return devs[i].ID < devs[j].ID })
	out := make([]any, 0, len(devs))
	for _, d := range devs {
		if onlyAvailable && !d.Available() {
			continue
		}
		out = append(out, map[string]any{"id": d.ID, "available": d.Available()})
	}
	ack(out)
}

func (r *Relay) session(id string) *Session {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.sessions[id]
}

func (r *Relay) publish(e Event) {
	e.Time = r.cfg.Now()
	r.obs.OnEvent(e)
}

// DeviceInfo is a device with its relay counters.
type DeviceInfo struct {
	Device
	Available bool   `json:"available"`
	Messages  uint64 `json:"messages"` // events this device relayed since it connected
}

// PairInfo is a pair with its relay counters.
type PairInfo struct {
	Pair
	Messages uint64 `json:"messages"` // events relayed between the two since they paired
}

// Devices lists every connected device, sorted by id.
func (r *Relay) Devices() []DeviceInfo {
	devs := r.store.Devices()
	out := make([]DeviceInfo, 0, len(devs))
	for _, d := range devs {
		if s := r.session(d.ID); s != nil {
			d.Transport = s.conn.Transport()
			out = append(out, DeviceInfo{Device: d, Available: d.Available(), Messages: s.sent.Load()})
			continue
		}
		out = append(out, DeviceInfo{Device: d, Available: d.Available()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// DeviceIDs lists the ids of every connected device, sorted.
func (r *Relay) DeviceIDs() []string {
	devs := r.store.Devices()
	ids := make([]string, len(devs))
	for i, d := range devs {
		ids[i] = d.ID
	}
	sort.Strings(ids)
	return ids
}

// SocketID returns the connection id holding a device id, the Go
// counterpart of the original server manager's lookup.
func (r *Relay) SocketID(deviceID string) (string, bool) {
	d, ok := r.store.Get(deviceID)
	if !ok {
		return "", false
	}
	return d.ConnID, true
}

// Pairs lists every live pair, sorted by the asking side's id.
func (r *Relay) Pairs() []PairInfo {
	ps := r.store.Pairs()
	out := make([]PairInfo, 0, len(ps))
	for _, p := range ps {
		var n uint64
		for _, id := range [...]string{p.A, p.B} {
			if s := r.session(id); s != nil {
				n += s.pairSent.Load()
			}
		}
		out = append(out, PairInfo{Pair: p, Messages: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].A < out[j].A })
	return out
}

// Kick disconnects a device; its peer is told the pair ended.
func (r *Relay) Kick(id string) error {
	s := r.session(id)
	if s == nil {
		return protocol.Errorf(protocol.CodeOffline, "device %q is not connected", id)
	}
	td := r.remove(s, "kicked", ReasonKicked)
	s.conn.Emit(protocol.EventServerError, protocol.Errorf(protocol.CodeKicked, "disconnected by an operator").Error())
	r.endSession(s, td, "kicked")
	s.conn.Disconnect()
	return nil
}

// Unpair breaks the pair device id is in; both sides are told.
func (r *Relay) Unpair(id string) (Pair, error) {
	p, ok := r.unpair(id, ReasonBroken)
	if !ok {
		return Pair{}, protocol.Errorf(protocol.CodeNotPaired, "device %q is not paired", id)
	}
	r.unpaired(p, "", ReasonBroken)
	return p, nil
}

// Shutdown stops the relay: new devices are refused, every paired device is
// told its pair ended, and every connection is closed. It returns when done
// or when ctx ends.
func (r *Relay) Shutdown(ctx context.Context) error {
	r.closing.Store(true)
	for _, p := range r.store.Pairs() {
		if _, ok := r.unpair(p.A, ReasonShutdown); !ok {
			continue
		}
		for _, id := range [...]string{p.A, p.B} {
			if s := r.session(id); s != nil {
				s.conn.Emit(protocol.EventDisconnect)
			}
		}
	}
	r.mu.RLock()
	all := make([]*Session, 0, len(r.sessions))
	for _, s := range r.sessions {
		all = append(all, s)
	}
	r.mu.RUnlock()
	for _, s := range all {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.conn.Emit(protocol.EventServerError, protocol.Errorf(protocol.CodeShuttingDown, "the relay is shutting down").Error())
		s.conn.Disconnect()
	}
	return nil
}

// isTrue reports whether a device's answer is the JSON value true, decoded
// or still raw (the first of raw values).
func isTrue(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case protocol.RawArgs:
		return string(firstRaw(x)) == "true"
	}
	return false
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

// Store returns the relay's state store.
func (r *Relay) Store() Store { return r.store }

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
//     connected (or away), who is paired with whom, who is asking whom. It
//     is the one place a handshake is known; each Store method is atomic.
//   - Relay.order is held across every call that changes Store state, the
//     change of Relay.devices that goes with it, and the publication of the
//     events that report it, so observers see events in the order the
//     changes happened. Routing a message takes no relay lock.
//   - Relay.devices maps a device id to its device on this relay. It is
//     written only with order held and read without a lock.
//   - A device outlives its connections: a Session is one connection of
//     it, and device.cur the live one (nil while the device is away within
//     its resume window). device.mu guards what belongs to the device: the
//     acks it owes (relayed requests awaiting its answer), the messages
//     held for it while away, the answer its own pairing request awaits,
//     and whether it has ended. Lock order: order before any device.mu,
//     and never two device.mu at once.
package server

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/p2prelay/p2prelay/protocol"
)

// Conn is the relay's view of one device connection. The socket.io binding
// implements it; tests may use a fake. Its methods must be safe for
// concurrent use and, but for Alive, must not block on the remote side.
type Conn interface {
	// Emit sends an event with arguments.
	Emit(event string, args protocol.Args)
	// EmitWithAck sends an event and asks for an answer; ack runs at most
	// once, with the values the device answered. The connection may keep
	// ack until the device answers or leaves: the relay makes it small.
	EmitWithAck(event string, args protocol.Args, ack func(protocol.Args))
	// Disconnect ends the device's session for good, after what was sent
	// before it: socket.io clients do not reconnect by themselves. The
	// relay still expects Leave.
	Disconnect()
	// Close closes the transport, as a network drop would: socket.io
	// clients reconnect by themselves. The relay still expects Leave.
	Close()
	// Transport names the current transport ("polling", "websocket").
	Transport() string
	// Alive reports whether the device still answers on this connection,
	// waiting at most timeout. A connection that cannot tell reports true.
	Alive(timeout time.Duration) bool
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

	order   sync.Mutex // see "Who owns what" in the package comment
	devices sync.Map   // device id -> *device; written with order held
	checks  sync.Map   // device id -> time a reclaim check may start again
	remote  remoteAcks // requests of devices on other nodes (cluster.go)

	closing atomic.Bool
	fenced  atomic.Bool // cut off from the shared store: admits nobody (Fence)
	// handing counts the handovers under way (a device that came back on
	// another node), for LocalDevices.
	handing atomic.Int32
	stats   *stats
}

// device is one device on this relay: made when its first connection
// joins, kept across a drop within its resume window, ended when it
// leaves for good.
type device struct {
	id  string
	gen atomic.Int32 // protocol.Generation of its latest connection
	cur atomic.Pointer[Session]

	sent     atomic.Uint64 // messages this device relayed
	pairSent atomic.Uint64 // messages relayed since its current pair began
	counters deviceCounters
	watch    atomic.Pointer[watcher]  // nil unless an operator watches it
	peer     atomic.Pointer[peerLink] // its peer, nil when unpaired; set with order held

	limit     *rate.Limiter // requests; nil when unlimited
	pairLimit *rate.Limiter // pairing requests; nil when unlimited

	mu        sync.Mutex // guards the fields below
	acks      map[uint64]*pendingAck
	nextAck   uint64
	asking    *asking // its own pairing request awaiting the answer
	held      []message
	heldBytes int
	awayTimer Timer    // runs out its resume window while it is away
	handover  *Session // its new connection, while another node hands over what it held
	handTimer Timer    // gives up waiting for that handover
	ended     bool
}

// peerLink is a device's peer, as routing needs it: the Store is the truth
// about pairs, and each change of a pair updates the links of its local
// sides (with order held, see linkPair), so routing a message reads one
// pointer instead of asking the Store.
type peerLink struct {
	id   string
	dev  *device // nil when the peer is on another node
	node string  // the peer's node, when it is another
}

// peerOf returns d's peer, nil when it has none.
func (d *device) peerOf() *peerLink { return d.peer.Load() }

// linkPair records a new pair on its local sides. r.order must be held.
func (r *Relay) linkPair(p Pair) {
	r.link(p.A, p.B)
	r.link(p.B, p.A)
}

// link records that device id is paired with peer: on id's device when it
// is here, else, when peer is here, on id's node (EnvLink).
func (r *Relay) link(id, peer string) {
	d, pd := r.device(id), r.device(peer)
	if d != nil {
		l := &peerLink{id: peer, dev: pd}
		if pd == nil && r.clustered() {
			l.node, _ = r.nodeOf(peer)
		}
		d.peer.Store(l)
		return
	}
	if pd == nil || !r.clustered() {
		return
	}
	if node, ok := r.nodeOf(id); ok && node != r.cfg.Node {
		r.post(node, Envelope{Kind: EnvLink, To: id, From: peer, PeerNode: r.cfg.Node})
	}
}

// peerFor returns d's link to target when target is d's peer. In a
// cluster, the link of a pair formed on another node reaches d's node a
// moment after the pair was settled in the shared store (EnvLink), and a
// side that heard of it sooner (its ack, a crossed request) may send first:
// when d has no link to target, the store, which holds the truth, is asked,
// and the link is made from it. Only refusals pay for that look-up.
func (r *Relay) peerFor(d *device, target string) *peerLink {
	if l := d.peerOf(); l != nil && l.id == target {
		return l
	}
	if !r.clustered() || target == "" || d.gone() {
		return nil
	}
	rec, ok := r.store.Get(d.id)
	if !ok || rec.Peer != target || rec.Away {
		return nil
	}
	r.order.Lock()
	defer r.order.Unlock()
	if l := d.peerOf(); l != nil && l.id == target {
		return l
	}
	l := &peerLink{id: target, dev: r.device(target)}
	if l.dev == nil {
		node, ok := r.nodeOf(target)
		if !ok {
			return nil
		}
		l.node = node
	}
	d.peer.Store(l)
	return l
}

// unlinkPair forgets an ended pair on its local sides. r.order must be
// held.
func (r *Relay) unlinkPair(p Pair) {
	for _, id := range [...]string{p.A, p.B} {
		if d := r.device(id); d != nil {
			if l := d.peer.Load(); l != nil && l.id == p.Other(id) {
				d.peer.Store(nil)
			}
		}
	}
}

// Session is one connection of a device to the relay. The binding gets it
// from Join and hands it back to Handle and Leave.
type Session struct {
	dev    *device
	conn   Conn
	connID string
	// stale counts the requests whose answer the relay stopped waiting
	// for and the device has not given: the connection keeps an ack for
	// each. Too many, and the device is taken for gone.
	stale atomic.Int32
}

// ID returns the device id.
func (s *Session) ID() string { return s.dev.id }

// Generation returns the protocol generation the device speaks.
func (s *Session) Generation() protocol.Generation { return s.dev.generation() }

func (d *device) generation() protocol.Generation { return protocol.Generation(d.gen.Load()) }

// message is what the relay sends a device: an event with its arguments,
// and, for a request, the number of the device's pending ack that takes
// the answer. Held for a device that is away, it goes out in order when the
// device returns.
type message struct {
	event string
	args  protocol.Args
	ackID uint64 // the pending ack that takes the answer; 0: none
	// blind sends an ack callback that nobody waits for: to a device that
	// is asked with a callback it does not call (generation 1 and
	// P2P_REGISTER).
	blind bool
	size  int // what it counts for in the hold
}

// asking is a device's own pairing request under way: the handshake the
// Store knows by id, and what answers the device when it settles.
type asking struct {
	shake uint64
	ack   Ack
	timer Timer
}

// pendingAck is a request the relay made of a device on another's behalf,
// awaiting its answer: a relayed P2P_EMIT_ACKNOWLEDGE, a stream request,
// or the peer's side of an unregister.
type pendingAck struct {
	src      *device // the device that asked, when it is on this node
	from     string  // the device that asked, when it is on another
	ack      Ack
	answered func(protocol.Args) // what the answer does
	timedOut func()              // what its timeout does
	onEnd    func()              // when set, what a failure does instead of answering ack
	timer    Timer               // nil when it has no timeout (stream chunks)
	via      *Session            // the connection it went out on; nil while held
	start    int64               // when it went out (Unix ns), if a watched device is in it
	shape    ackShape            // how a failure answers ack
	stream   bool                // a stream chunk: the end of its pair fails it
}

// asker returns the id of the device that asked.
func (p *pendingAck) asker() string {
	if p.src != nil {
		return p.src.id
	}
	return p.from
}

// stopTimer stops p's timeout, if it has one.
func (p *pendingAck) stopTimer() {
	if p.timer != nil {
		p.timer.Stop()
	}
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

// device returns the device id on this relay, nil if none.
func (r *Relay) device(id string) *device {
	if v, ok := r.devices.Load(id); ok {
		return v.(*device)
	}
	return nil
}

// sendTo delivers m to d: on its connection, or, while it is away, into
// its hold, in order. It reports false when d has ended or its hold is
// full.
func (r *Relay) sendTo(d *device, m message) bool {
	if s := d.cur.Load(); s != nil {
		r.deliver(s, m)
		return true
	}
	d.mu.Lock()
	if s := d.cur.Load(); s != nil {
		// It came back meanwhile: its held messages went out before cur
		// was set, so this one goes after them.
		d.mu.Unlock()
		r.deliver(s, m)
		return true
	}
	defer d.mu.Unlock()
	if d.ended {
		return false
	}
	m.size = len(m.event) + m.args.Size()
	if len(d.held) >= r.cfg.ResumeHold || d.heldBytes+m.size > r.cfg.ResumeHoldBytes {
		return false
	}
	d.held = append(d.held, m)
	d.heldBytes += m.size
	return true
}

// noAnswer takes the answer nobody waits for.
func noAnswer(protocol.Args) {}

// deliver writes m on connection s. The ack it leaves with the connection,
// which the socket.io library keeps until the device answers or leaves,
// holds nothing but the ack's number: the request's state is in the
// device's acks, and gone once the relay stops waiting.
func (r *Relay) deliver(s *Session, m message) {
	switch {
	case m.ackID != 0:
		d, id := s.dev, m.ackID
		s.conn.EmitWithAck(m.event, m.args, func(answer protocol.Args) { r.ackAnswered(d, s, id, answer) })
	case m.blind && int(s.stale.Add(1)) <= r.staleLimit():
		// Kept by the connection until the device leaves, as every
		// unanswered callback is, and counted with them: past the bound the
		// device is asked without one, which it does not read anyway.
		s.conn.EmitWithAck(m.event, m.args, noAnswer)
	default:
		s.conn.Emit(m.event, m.args)
	}
}

// emit sends the device a relay-made event; it is dropped if the device
// is away with a full hold.
func (r *Relay) emit(d *device, event string, vals ...any) {
	r.sendTo(d, message{event: event, args: protocol.NewArgs(vals...)})
}

// admit decides whether a device may connect, whether it takes over an id
// in use, and whether the holder of the id must first be checked: with
// device tokens, a valid token always takes over; without, the
// duplicate-id policy says, and a holder that no longer answers gives way.
func (r *Relay) admit(info ConnInfo, rec *Device) (takeover bool, check *holderCheck, err error) {
	if r.closing.Load() {
		return false, nil, protocol.Errorf(protocol.CodeShuttingDown, "the relay is shutting down")
	}
	if r.fenced.Load() {
		return false, nil, protocol.Errorf(protocol.CodeUnavailable, "this relay node cannot reach the cluster: connect again")
	}
	held, inUse := r.store.Get(info.DeviceID)
	inUse = inUse && !held.Away // an away id waits for whoever claims it
	switch {
	case r.cfg.Tokens != nil && info.Token == "" && inUse:
		return false, nil, protocol.Errorf(protocol.CodeIDInUse, "device id %q is already connected; present its token to reclaim it", info.DeviceID)
	case r.cfg.Tokens != nil:
		exp, err := r.cfg.Tokens.Verify(info.Token, info.DeviceID)
		if err != nil {
			return false, nil, err
		}
		rec.TokenExpires = exp
		takeover = true
	case r.cfg.DuplicateID == DuplicateTakeover:
		takeover = true
	case inUse:
		if r.cfg.ReclaimCheck > 0 {
			if d := r.device(info.DeviceID); d != nil {
				if s := d.cur.Load(); s != nil && s.connID == held.ConnID {
					return false, &holderCheck{id: info.DeviceID, s: s}, nil
				}
			} else if r.clustered() && held.Node != r.cfg.Node {
				return false, &holderCheck{id: info.DeviceID, node: held.Node}, nil
			}
		}
		return false, nil, protocol.Errorf(protocol.CodeIDInUse, "device id %q is already connected", info.DeviceID)
	}
	if r.cfg.MaxDevices > 0 && !(takeover && inUse) && !held.Away && r.store.Len() >= r.cfg.MaxDevices {
		return false, nil, protocol.Errorf(protocol.CodeServerFull, "the relay is at its limit of %d devices", r.cfg.MaxDevices)
	}
	return takeover, nil, nil
}

// storeErr passes the Store's refusals (a *protocol.Error) on, and turns a
// failure of the Store itself (a shared store out of reach) into
// UNAVAILABLE, logged: the device should try again, maybe elsewhere.
func (r *Relay) storeErr(err error) error {
	if err == nil {
		return nil
	}
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return err
	}
	r.log.Warn("the relay's state is out of reach", "err", err)
	return protocol.Errorf(protocol.CodeUnavailable, "the relay cannot reach its state: try again")
}

// RefuseConn counts and logs a connection refused before it could join
// (a bad id, say), and returns the refusal to tell the device.
func (r *Relay) RefuseConn(addr string, err error) *protocol.Error {
	pe := protocol.AsError(err)
	r.stats.refusal(pe.Code)
	r.log.Info("connection refused", "addr", addr, "code", string(pe.Code), "reason", pe.Message)
	return pe
}

// Join registers a connected device. When its id is held by a connection
// that may be dead, Join first checks it (Config.ReclaimCheck) and so may
// take that long. On error, which RefuseConn has counted and logged, the
// caller must tell the device and close the connection.
func (r *Relay) Join(info ConnInfo, c Conn) (*Session, error) {
	s, err := r.join(info, c, true)
	if err != nil {
		return nil, r.RefuseConn(info.Address, err)
	}
	return s, nil
}

func (r *Relay) join(info ConnInfo, c Conn, mayCheck bool) (*Session, error) {
	rec := Device{
		ID:          info.DeviceID,
		ConnID:      info.ConnID,
		Gen:         info.Gen,
		Address:     info.Address,
		Transport:   c.Transport(),
		EngineIO:    info.EngineIO,
		ConnectedAt: r.clock.Now(),
		Node:        r.cfg.Node,
	}
	r.order.Lock()
	takeover, holder, err := r.admit(info, &rec)
	if holder != nil {
		r.order.Unlock()
		if !mayCheck || !r.holderGone(holder) {
			return nil, protocol.Errorf(protocol.CodeIDInUse, "device id %q is already connected", info.DeviceID)
		}
		return r.join(info, c, false)
	}
	var claim Claim
	if err == nil {
		claim, err = r.store.Add(rec, takeover)
		err = r.storeErr(err)
	}
	if err != nil {
		r.order.Unlock()
		return nil, err
	}
	d := r.device(info.DeviceID)
	moved := claim.Resumed && d == nil && r.clustered() && claim.PrevNode != "" && claim.PrevNode != r.cfg.Node
	if !claim.Resumed || d == nil {
		d = r.newDevice(info.DeviceID)
	}
	s := &Session{dev: d, conn: c, connID: info.ConnID}
	d.gen.Store(int32(info.Gen))
	var old *device
	if claim.Resumed {
		r.devices.Store(d.id, d)
		if moved {
			// It was away from another node: that node hands over what it
			// held for it, then the device is put on its connection.
			r.link(d.id, claim.Peer)
			id, peer := d.id, claim.Peer
			d.mu.Lock()
			d.handover = s
			d.handTimer = r.after(handoverWait, func() {
				if r.handedOver(id) {
					// The former node said nothing: it is gone. Its peer
					// learns where the device is from here.
					r.relink(peer, id, r.cfg.Node)
				}
			})
			d.mu.Unlock()
			r.post(claim.PrevNode, Envelope{Kind: EnvResumed, To: d.id})
		} else {
			r.resume(d, s)
		}
		rec.Peer = claim.Peer
		r.publish(Event{Kind: DeviceResumed, Device: &rec, ID: d.id, Peer: claim.Peer})
	} else {
		old = r.device(d.id)
		d.cur.Store(s)
		r.devices.Store(d.id, d)
		if claim.Replaced != nil {
			r.publishTeardown(claim.Replaced, "taken over", ReasonTakeover)
		}
		r.publish(Event{Kind: DeviceConnected, Device: &rec, ID: d.id})
	}
	r.order.Unlock()

	if claim.Replaced != nil && old == nil && r.clustered() && claim.Replaced.Device.Node != r.cfg.Node {
		// Taken over from a device on another node: that node lets it go;
		// its peer and askers hear from here.
		r.post(claim.Replaced.Device.Node, Envelope{Kind: EnvTakenOver, To: d.id})
		if p := claim.Replaced.Pair; p != nil {
			r.notify(p.Other(d.id), protocol.EventDisconnect, d.id)
		}
	}
	if claim.Replaced != nil && old != nil {
		r.log.Info("device id taken over", "id", d.id, "new_conn", s.connID)
		oldConn := old.cur.Load()
		r.emit(old, protocol.EventServerError, protocol.Errorf(protocol.CodeTakenOver, "device id %q was claimed by a new connection", d.id).Error())
		r.endDevice(old, claim.Replaced, "taken over")
		if oldConn != nil {
			oldConn.conn.Disconnect()
		}
	}
	r.stats.connects.Add(1)
	if claim.Resumed {
		r.log.Info("device resumed", "id", d.id, "peer", claim.Peer, "addr", info.Address, "transport", rec.Transport, "eio", info.EngineIO)
	} else {
		r.log.Info("device connected", "id", d.id, "gen", info.Gen.String(), "addr", info.Address, "transport", rec.Transport, "eio", info.EngineIO)
	}
	return s, nil
}

func (r *Relay) newDevice(id string) *device {
	d := &device{id: id, acks: make(map[uint64]*pendingAck)}
	if r.cfg.Rate > 0 {
		d.limit = rate.NewLimiter(rate.Limit(r.cfg.Rate), r.cfg.Burst)
	}
	if r.cfg.PairRate > 0 {
		d.pairLimit = rate.NewLimiter(rate.Limit(r.cfg.PairRate), r.cfg.PairBurst)
	}
	return d
}

// holderCheck is a live-looking holder of an id that another connection
// claims: its session here, or its node.
type holderCheck struct {
	id   string
	s    *Session
	node string
}

// holderGone checks whether the connection holding an id still answers,
// at most one check per id at a time. A holder that does not answer is
// dropped, as a connection that timed out, and holderGone reports true; a
// flood of claims on a live id costs one check per ReclaimCheck period.
func (r *Relay) holderGone(h *holderCheck) bool {
	now := r.clock.Now()
	if v, busy := r.checks.Load(h.id); busy && now.Before(v.(time.Time)) {
		return false
	}
	r.checks.Store(h.id, now.Add(r.cfg.ReclaimCheck))
	var gone bool
	if h.s != nil {
		gone = !h.s.conn.Alive(r.cfg.ReclaimCheck)
		if gone {
			r.log.Info("device id reclaimed from a connection that no longer answers", "id", h.id)
			r.drop(h.s, "unresponsive")
			h.s.conn.Close()
		}
	} else {
		gone = r.probeRemote(h.id, h.node)
	}
	if gone {
		r.checks.Delete(h.id)
	}
	return gone // a live holder: the next check may come after the period
}

// probeRemote asks node whether its connection holding id still answers,
// and waits for the answer: true when the holder is gone (or its node does
// not say in time, being gone itself).
func (r *Relay) probeRemote(id, node string) bool {
	answer := make(chan bool, 1)
	p := &pendingAck{}
	p.answered = func(a protocol.Args) { answer <- a.FirstIsTrue() }
	p.onEnd = func() { answer <- true }
	p.timedOut = p.onEnd
	corr := r.askRemote(node, p, r.cfg.ReclaimCheck+time.Second)
	r.post(node, Envelope{Kind: EnvProbe, To: id, Corr: corr})
	return <-answer
}

// resume puts a device that was away back on connection s: its held
// messages go out in order before anything sent after. r.order must be
// held.
func (r *Relay) resume(d *device, s *Session) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.awayTimer != nil {
		d.awayTimer.Stop()
		d.awayTimer = nil
	}
	held := d.held
	d.held, d.heldBytes = nil, 0
	for _, m := range held {
		r.deliver(s, m)
	}
	for _, p := range d.acks {
		if p.via == nil {
			p.via = s
		}
	}
	d.cur.Store(s)
}

// Leave ends a session whose connection closed. reason is the binding's:
// "transport close", "transport error" and "ping timeout" are drops, which
// keep a paired device away for its resume window; anything else (an
// explicit disconnect, a kick) ends it at once. Leave is safe to call more
// than once.
func (r *Relay) Leave(s *Session, reason string) {
	if s.dev.cur.Load() != s {
		return // replaced by a newer connection, or gone already
	}
	if isDrop(reason) {
		r.drop(s, reason)
		return
	}
	r.endDevice(s.dev, r.remove(s, reason, ReasonDisconnect), reason)
}

// isDrop reports whether a connection ended without the device asking.
func isDrop(reason string) bool {
	switch reason {
	case "transport close", "transport error", "ping timeout", "unresponsive":
		return true
	}
	return false
}

// drop handles a connection that dropped: a paired device is kept away
// for its resume window, anything else leaves.
func (r *Relay) drop(s *Session, reason string) {
	if r.cfg.ResumeWindow <= 0 || r.closing.Load() && !r.clustered() {
		r.endDevice(s.dev, r.remove(s, reason, ReasonDisconnect), reason)
		return
	}
	d := s.dev
	r.order.Lock()
	if d.cur.Load() != s {
		r.order.Unlock()
		return
	}
	td, kept, ok := r.store.Suspend(d.id, s.connID)
	if !ok {
		r.order.Unlock()
		return
	}
	if !kept {
		r.devices.CompareAndDelete(d.id, d)
		r.publishTeardown(td, reason, ReasonDisconnect)
		r.order.Unlock()
		r.endDevice(d, td, reason)
		return
	}
	d.cur.Store(nil)
	rec := td.Device
	rec.Away = true
	r.publishShakes(td)
	r.publish(Event{Kind: DeviceAway, ID: d.id, Peer: rec.Peer, Device: &rec, Reason: reason})
	d.mu.Lock()
	d.awayTimer = r.after(r.cfg.ResumeWindow, func() { r.expire(d, s.connID) })
	failed := d.takeAcksVia(s)
	ask := d.asking
	d.asking = nil
	d.mu.Unlock()
	r.order.Unlock()

	if ask != nil {
		ask.timer.Stop()
	}
	r.failAcks(failed, d.id)
	r.answerAskers(d, td)
	r.log.Info("device away", "id", d.id, "peer", rec.Peer, "reason", reason, "window", r.cfg.ResumeWindow)
}

// takeAcksVia removes and returns the acks d owes that went out on s: the
// device cannot answer them on another connection. d.mu must be held.
func (d *device) takeAcksVia(s *Session) []*pendingAck {
	var out []*pendingAck
	for id, p := range d.acks {
		if p.via == s {
			out = append(out, p)
			delete(d.acks, id)
		}
	}
	return out
}

// expire ends a device whose resume window ran out while it was away.
func (r *Relay) expire(d *device, connID string) {
	r.order.Lock()
	if d.cur.Load() != nil {
		r.order.Unlock()
		return
	}
	td, ok := r.store.Remove(d.id, connID)
	if !ok {
		r.order.Unlock()
		return
	}
	r.devices.CompareAndDelete(d.id, d)
	r.publishTeardown(td, "did not come back", ReasonAway)
	r.order.Unlock()
	r.endDevice(d, td, "did not come back")
}

// remove takes s's device out of the store, if s still holds it, and
// publishes what that ended. It returns the teardown, nil when s no longer
// held the id.
func (r *Relay) remove(s *Session, reason, pairReason string) *Teardown {
	r.order.Lock()
	defer r.order.Unlock()
	return r.removeLocked(s.dev, s.connID, reason, pairReason)
}

// removeLocked is remove with r.order held, by device and connection id.
func (r *Relay) removeLocked(d *device, connID, reason, pairReason string) *Teardown {
	td, ok := r.store.Remove(d.id, connID)
	if !ok {
		return nil
	}
	r.devices.CompareAndDelete(d.id, d)
	r.publishTeardown(td, reason, pairReason)
	return td
}

// publishTeardown publishes, in order, what a device's removal ended: its
// pair, its handshakes, then the device itself. r.order must be held.
func (r *Relay) publishTeardown(td *Teardown, reason, pairReason string) {
	id := td.Device.ID
	if td.Pair != nil {
		r.unlinkPair(*td.Pair)
		r.publish(Event{Kind: PairEnded, ID: td.Pair.A, Peer: td.Pair.B, Reason: pairReason})
	}
	r.publishShakes(td)
	r.publish(Event{Kind: DeviceDisconnected, ID: id, Reason: reason})
}

// publishShakes publishes the handshakes a device's removal or drop ended
// as refused, OFFLINE. r.order must be held.
func (r *Relay) publishShakes(td *Teardown) {
	for _, hs := range td.Handshakes {
		if hs.Dst == td.Device.ID {
			r.stats.pairOutcome(protocol.CodeOffline)
		}
		r.publish(Event{Kind: PairRefused, ID: hs.Src, Peer: hs.Dst, Code: protocol.CodeOffline})
	}
}

// endDevice tears a device down after it left the store: it fails the
// acks waiting on it, drops its held messages and its own pairing request,
// tells its peer, and answers the sources of the handshakes it was the
// target of. td is what the store removal ended, nil when there was
// nothing (the device had been replaced or had left already).
func (r *Relay) endDevice(d *device, td *Teardown, reason string) {
	d.mu.Lock()
	already := d.ended
	d.ended = true
	d.cur.Store(nil)
	acks := d.acks
	d.acks = nil
	ask := d.asking
	d.asking = nil
	d.held, d.heldBytes = nil, 0
	if d.awayTimer != nil {
		d.awayTimer.Stop()
		d.awayTimer = nil
	}
	d.mu.Unlock()
	if ask != nil {
		ask.timer.Stop()
	}
	// Taking the map made these acks ours to answer: a timer that fires now
	// finds nothing to take.
	failed := make([]*pendingAck, 0, len(acks))
	for _, p := range acks {
		failed = append(failed, p)
	}
	r.failAcks(failed, d.id)
	if td == nil {
		if !already {
			r.log.Debug("device ended without store record", "id", d.id, "reason", reason)
		}
		return
	}
	if td.Pair != nil {
		r.notify(td.Pair.Other(d.id), protocol.EventDisconnect, d.id)
		r.log.Info("pair ended", "a", td.Pair.A, "b", td.Pair.B, "reason", reason)
	}
	r.answerAskers(d, td)
	r.stats.disconnects.Add(1)
	r.log.Info("device disconnected", "id", d.id, "reason", reason)
}

// failAcks answers acks that d can no longer answer with OFFLINE.
func (r *Relay) failAcks(acks []*pendingAck, id string) {
	for _, p := range acks {
		p.stopTimer()
		r.failAck(p, protocol.Errorf(protocol.CodeOffline, "device %q disconnected before answering", id))
	}
}

// answerAskers answers the sources of the handshakes d was asked in, which
// td ended, with OFFLINE.
func (r *Relay) answerAskers(d *device, td *Teardown) {
	for _, hs := range td.Handshakes {
		if hs.Dst != d.id {
			continue // its own request: dropped with it
		}
		if src := r.device(hs.Src); src != nil {
			if a := src.takeAsking(hs.ID); a != nil {
				a.timer.Stop()
				r.refuse(src, protocol.Errorf(protocol.CodeOffline, "device %q disconnected during pairing", d.id), a.ack, ackFalse)
			}
		}
	}
}

// TransportChanged publishes a device's new transport (after an upgrade
// from polling to websocket).
func (r *Relay) TransportChanged(s *Session) {
	r.order.Lock()
	defer r.order.Unlock()
	d, ok := r.store.Get(s.dev.id)
	if !ok || d.ConnID != s.connID {
		return
	}
	d.Transport = s.conn.Transport()
	r.publish(Event{Kind: DeviceUpdated, ID: d.ID, Device: &d})
}

// Handle processes one event from a device. ack is nil when the device sent
// none. Handle never panics on device input: every bad request is refused
// with a SERVER_ERROR and its ack, if any, answered.
func (r *Relay) Handle(s *Session, event string, args protocol.Args, ack Ack) {
	d := s.dev
	if d.limit != nil && !d.limit.AllowN(r.clock.Now(), 1) {
		if event == protocol.EventRegisterSuccess || event == protocol.EventRegisterFailed {
			// An answer, not a request: an honest device sends one per
			// question. A flood of them is dropped, counted, unanswered.
			r.stats.refusal(protocol.CodeRateLimited)
			d.counters.refused(protocol.CodeRateLimited)
			return
		}
		shape := ackError
		if answersFalse(event) {
			shape = ackFalse
		}
		r.refuse(d, protocol.Errorf(protocol.CodeRateLimited, "more than %g requests a second", r.cfg.Rate), ack, shape)
		return
	}
	switch event {
	case protocol.EventRegister:
		r.handleRegister(d, args, ack)
	case protocol.EventRegisterSuccess, protocol.EventRegisterFailed:
		r.handleGen1Answer(d, event == protocol.EventRegisterSuccess, ack)
	case protocol.EventUnregister:
		r.handleUnregister(d, ack)
	case protocol.EventRegisterStream:
		r.handleRegisterStream(d, args, ack)
	case protocol.EventEmit:
		r.handleEmit(d, args, ack, false)
	case protocol.EventEmitAck:
		r.handleEmit(d, args, ack, true)
	case protocol.EventListClients:
		r.handleListClients(d, ack)
	case protocol.EventListDevices:
		r.handleListDevices(d, args, ack)
	case protocol.EventLeave:
		r.handleLeave(s, ack)
	case protocol.EventStatus:
		r.handleStatus(d, ack)
	default:
		r.refuse(d, protocol.Errorf(protocol.CodeUnknownEvent, "unknown event %q", truncate(event, 64)), ack, ackError)
	}
}

// handleLeave ends a device that says it is leaving, answers it, and
// disconnects it.
func (r *Relay) handleLeave(s *Session, ack Ack) {
	if s.dev.cur.Load() == s {
		r.endDevice(s.dev, r.remove(s, "left", ReasonDisconnect), "left")
	}
	ack.answer(true)
	s.conn.Disconnect()
}

// ackShape says how a refused request's ack is answered.
type ackShape uint8

const (
	ackError ackShape = iota // relay requests and the rest: {"error": {...}}
	ackFalse                 // requests answered with a boolean: false, {"error": {...}}
)

// answersFalse reports whether a refused event is answered false: the
// events the original clients send expecting a boolean, which would read
// an error object first as a yes.
func answersFalse(event string) bool {
	switch event {
	case protocol.EventRegister, protocol.EventUnregister, protocol.EventRegisterStream:
		return true
	}
	return false
}

// refuse tells d why its request was refused and answers its ack.
func (r *Relay) refuse(d *device, err *protocol.Error, ack Ack, shape ackShape) {
	r.stats.refusal(err.Code)
	d.counters.refused(err.Code)
	r.tap(d, Traffic{Dir: DirIn, Code: err.Code, Reason: err.Message})
	if n, ok := d.counters.logRefusal(r.clock.Now()); ok {
		if n > 0 {
			r.log.Info("request refused", "id", d.id, "code", string(err.Code), "reason", err.Message, "unlogged_since", n)
		} else {
			r.log.Info("request refused", "id", d.id, "code", string(err.Code), "reason", err.Message)
		}
	}
	r.emit(d, protocol.EventServerError, err.Error())
	switch shape {
	case ackFalse:
		// The original clients read only the first value; the error object
		// after it tells newer ones why without relying on SERVER_ERROR.
		ack.answer(false, err.AckPayload())
	default:
		ack.answer(err.AckPayload())
	}
}

// publish stamps e and hands it to the observer. r.order must be held.
func (r *Relay) publish(e Event) {
	e.Time = r.clock.Now()
	e.Node = r.cfg.Node
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

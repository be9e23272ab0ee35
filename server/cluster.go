package server

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2prelay/p2prelay/protocol"
)

// Several relays (nodes) may share one Store: a device on one node then
// pairs with, and relays to, a device on another. What crosses between
// nodes goes on a Bus, as Envelopes; package cluster carries them over
// Redis. Without a Bus (the default) every device is on this node.
//
// Who does what across nodes:
//   - The node of a device holds its connection, its session state (acks
//     it owes, its own pairing request, its hold while away) and its
//     peer link; the Store knows which node holds each device
//     (Device.Node).
//   - A change of a pair is made, in the Store, by the node of the device
//     whose request or end caused it; that node tells the other side's
//     node (EnvLink, EnvRequest P2P_UNREGISTER, EnvNotice), which updates
//     its device's link and tells the device.
//   - A request's answer goes back to the node that asked (Corr), which
//     keeps the request's state and timeout (Relay.remote).

// Bus carries envelopes between the nodes sharing a Store. Send queues e
// for node and returns at once; envelopes from one node to another arrive
// in the order they were sent. A node that cannot reach the others is the
// Bus implementation's to fence (see package cluster).
type Bus interface {
	Send(node string, e Envelope)
}

// EnvelopeKind says what an Envelope carries.
type EnvelopeKind uint8

// The kinds of Envelope.
const (
	// EnvRelay is an event From relays to its peer To (Corr set: it wants
	// the answer back).
	EnvRelay EnvelopeKind = iota + 1
	// EnvRequest is a question the relay asks To on From's behalf: Event
	// P2P_REGISTER (a pairing request, Shake), P2P_REGISTER_STREAM, or
	// P2P_UNREGISTER (the pair with From ended; answer wanted when Corr).
	EnvRequest
	// EnvAnswer is To's answer (Args) to request Corr.
	EnvAnswer
	// EnvFail says request Corr failed (Code, Text).
	EnvFail
	// EnvReply is From's answer (Accept) to pairing handshake Shake, for
	// its source To.
	EnvReply
	// EnvNotice is a relay-made event for To (Event, Args): P2P_DISCONNECT
	// when its pair with From ended (Unlink), or a late "yes" (IfUnpaired).
	EnvNotice
	// EnvSettled tells To that its own pairing request Shake was settled,
	// paired with From (both asked each other at once).
	EnvSettled
	// EnvLink tells To that it is paired with From, on node PeerNode.
	EnvLink
	// EnvKick asks To's node to kick it.
	EnvKick
	// EnvResumed tells To's former node that To came back on node Node:
	// it hands over what it held for To (EnvRelay), then EnvHandedOver.
	EnvResumed
	// EnvHandedOver says the former node handed over all it held for To.
	EnvHandedOver
	// EnvTakenOver tells To's node that a connection on another node took
	// its id over: it lets the device go.
	EnvTakenOver
	// EnvProbe asks To's node whether its connection still answers (a
	// claim on its id came to another node); the answer (Accept: gone)
	// comes back as EnvAnswer to Corr.
	EnvProbe
)

// handoverWait bounds how long a device that came back on this node waits
// for its former node's handover.
const handoverWait = 2 * time.Second

// Envelope is one thing a node sends another.
type Envelope struct {
	Kind       EnvelopeKind
	Node       string // the node that sends it
	To         string
	From       string
	Event      string
	Args       protocol.Args
	Corr       uint64 // a request's number on the node that asked
	Shake      uint64 // a pairing handshake
	Accept     bool
	Unlink     bool // EnvNotice: To's pair with From ended
	IfUnpaired bool // EnvNotice: only if To has no peer
	Code       protocol.Code
	Text       string
	PeerNode   string // EnvLink: From's node
	Size       int    // EnvRelay: the arguments' size, as counted
}

// remoteAcks are the requests this node made of devices on other nodes,
// awaiting their answers, by number.
type remoteAcks struct {
	next atomic.Uint64
	mu   sync.Mutex // guards byID
	byID map[uint64]*remoteAck
}

type remoteAck struct {
	p    *pendingAck
	node string // where the device asked is
}

// post sends e to node, from this node.
func (r *Relay) post(node string, e Envelope) {
	e.Node = r.cfg.Node
	r.cfg.Bus.Send(node, e)
}

// clustered reports whether other nodes share the store.
func (r *Relay) clustered() bool { return r.cfg.Bus != nil }

// nodeOf returns the node holding device id, as the Store says.
func (r *Relay) nodeOf(id string) (string, bool) {
	d, ok := r.store.Get(id)
	if !ok {
		return "", false
	}
	return d.Node, true
}

// askRemote records p, a request of device to on node, and returns its
// number; p's answer comes back as EnvAnswer, its failure as EnvFail, or
// as timeout passes (p.timedOut; 0: none) or node goes (OFFLINE).
func (r *Relay) askRemote(node string, p *pendingAck, timeout time.Duration) uint64 {
	corr := r.remote.next.Add(1)
	r.remote.mu.Lock()
	if r.remote.byID == nil {
		r.remote.byID = make(map[uint64]*remoteAck)
	}
	r.remote.byID[corr] = &remoteAck{p: p, node: node}
	r.remote.mu.Unlock()
	if timeout > 0 {
		p.timer = r.after(timeout, func() {
			if p := r.takeRemote(corr); p != nil {
				p.timedOut()
			}
		})
	}
	return corr
}

// takeRemote returns request corr and forgets it, nil when it is over.
func (r *Relay) takeRemote(corr uint64) *pendingAck {
	r.remote.mu.Lock()
	defer r.remote.mu.Unlock()
	ra := r.remote.byID[corr]
	if ra == nil {
		return nil
	}
	delete(r.remote.byID, corr)
	return ra.p
}

// NodeGone fails what this node awaits from devices on node, which left
// the cluster: their requests answer OFFLINE.
func (r *Relay) NodeGone(node string) {
	r.remote.mu.Lock()
	var failed []*pendingAck
	for corr, ra := range r.remote.byID {
		if ra.node == node {
			failed = append(failed, ra.p)
			delete(r.remote.byID, corr)
		}
	}
	r.remote.mu.Unlock()
	for _, p := range failed {
		p.stopTimer()
		r.failAck(p, protocol.Errorf(protocol.CodeOffline, "the node of the device left the cluster"))
	}
}

// Receive handles an envelope another node sent this one. The Bus calls
// it, in order, for each envelope.
func (r *Relay) Receive(e Envelope) {
	switch e.Kind {
	case EnvRelay:
		r.receiveRelay(e)
	case EnvRequest:
		r.receiveRequest(e)
	case EnvAnswer:
		if p := r.takeRemote(e.Corr); p != nil {
			p.stopTimer()
			p.answered(e.Args)
		}
	case EnvFail:
		if p := r.takeRemote(e.Corr); p != nil {
			p.stopTimer()
			r.failAck(p, &protocol.Error{Code: e.Code, Message: e.Text})
		}
	case EnvReply:
		r.targetAnswered(e.From, Handshake{ID: e.Shake, Src: e.To, Dst: e.From}, e.Accept)
	case EnvNotice:
		r.receiveNotice(e)
	case EnvSettled:
		if d := r.device(e.To); d != nil {
			if a := d.takeAsking(e.Shake); a != nil {
				a.timer.Stop()
				if e.Accept {
					a.ack.answer(true)
				} else {
					r.refuse(d, &protocol.Error{Code: e.Code, Message: e.Text}, a.ack, ackFalse)
				}
			}
		}
	case EnvLink:
		r.order.Lock()
		if d := r.device(e.To); d != nil {
			d.peer.Store(&peerLink{id: e.From, node: e.PeerNode, dev: r.device(e.From)})
			d.pairSent.Store(0)
		}
		r.order.Unlock()
	case EnvKick:
		_ = r.Kick(e.To)
	case EnvResumed:
		r.handOver(e.To, e.Node)
	case EnvHandedOver:
		r.handedOver(e.To)
	case EnvTakenOver:
		r.takenOverElsewhere(e.To)
	case EnvProbe:
		go r.probeForRemote(e)
	}
}

// answerBack sends the answer to request corr of node, or its failure.
func (r *Relay) answerBack(node string, corr uint64, to string, answer protocol.Args) {
	r.post(node, Envelope{Kind: EnvAnswer, To: to, Corr: corr, Args: answer})
}

func (r *Relay) failBack(node string, corr uint64, to string, err *protocol.Error) {
	r.post(node, Envelope{Kind: EnvFail, To: to, Corr: corr, Code: err.Code, Text: err.Message})
}

// receiveRelay delivers an event a device on another node relays to its
// peer here. The pairing is checked here too: the sender's node may not
// have heard yet that the pair ended.
func (r *Relay) receiveRelay(e Envelope) {
	t := r.device(e.To)
	fail := func(err *protocol.Error) {
		if e.Corr != 0 {
			r.failBack(e.Node, e.Corr, e.From, err)
		}
	}
	if t == nil {
		if node, ok := r.nodeOf(e.To); ok && node != r.cfg.Node && node != e.Node && e.Kind == EnvRelay {
			// It moved (it came back on another node): pass it on, once.
			e.Kind = EnvRelay
			r.cfg.Bus.Send(node, e)
			return
		}
		fail(protocol.Errorf(protocol.CodeOffline, "device %q is offline", e.To))
		return
	}
	if r.peerFor(t, e.From) == nil {
		fail(protocol.Errorf(protocol.CodeNotPaired, "device %q is not your peer", e.To))
		return
	}
	if e.Corr == 0 {
		if r.sendTo(t, message{event: e.Event, args: e.Args}) {
			r.countRelayed(nil, t, e.Event, e.Size)
		}
		return
	}
	node, corr, from := e.Node, e.Corr, e.From
	p := &pendingAck{from: from, stream: e.Event == protocol.EventEmitStream}
	p.answered = func(answer protocol.Args) { r.answerBack(node, corr, from, answer) }
	p.onEnd = func() {
		r.failBack(node, corr, from, protocol.Errorf(protocol.CodeOffline, "device %q disconnected before answering", t.id))
	}
	p.timedOut = func() {} // the asking node times it out
	timeout := r.cfg.AckTimeout
	if p.stream {
		timeout = 0
	}
	r.ask(t, p, e.Event, e.Args, e.Size, timeout)
}

// receiveRequest asks a device here a question on the behalf of a device
// on another node.
func (r *Relay) receiveRequest(e Envelope) {
	t := r.device(e.To)
	node, corr, from := e.Node, e.Corr, e.From
	switch e.Event {
	case protocol.EventRegister:
		hs := Handshake{ID: e.Shake, Src: from, Dst: e.To}
		if t == nil {
			r.post(node, Envelope{Kind: EnvReply, To: from, From: e.To, Shake: e.Shake})
			return
		}
		r.askToPair(t, hs, node)
	case protocol.EventUnregister:
		if t == nil {
			if corr != 0 {
				r.answerBack(node, corr, from, protocol.Args{})
			}
			return
		}
		r.order.Lock()
		if l := t.peerOf(); l != nil && l.id == from {
			t.peer.Store(nil)
		}
		r.order.Unlock()
		var w *pendingAck
		if corr != 0 {
			w = &pendingAck{from: from}
			w.onEnd = func() { r.answerBack(node, corr, from, protocol.Args{}) }
		}
		r.tellUnpaired(t, w)
	case protocol.EventRegisterStream:
		if t == nil {
			r.failBack(node, corr, from, protocol.Errorf(protocol.CodeOffline, "device %q is offline", e.To))
			return
		}
		if t.generation() == protocol.Gen1 {
			r.answerBack(node, corr, from, protocol.NewArgs(false))
			return
		}
		p := &pendingAck{from: from}
		p.answered = func(answer protocol.Args) { r.answerBack(node, corr, from, answer) }
		p.onEnd = func() {
			r.failBack(node, corr, from, protocol.Errorf(protocol.CodeOffline, "device %q disconnected before answering", e.To))
		}
		p.timedOut = func() {}
		r.ask(t, p, protocol.EventRegisterStream, protocol.Args{}, -1, r.cfg.PairTimeout)
	}
}

// receiveNotice tells a device here what happened on another node.
func (r *Relay) receiveNotice(e Envelope) {
	d := r.device(e.To)
	if d == nil {
		return
	}
	if e.IfUnpaired && (d.peerOf() != nil || d.gone()) {
		return
	}
	if e.Unlink {
		r.order.Lock()
		if l := d.peerOf(); l != nil && l.id == e.From {
			d.peer.Store(nil)
		}
		r.order.Unlock()
	}
	r.sendTo(d, message{event: e.Event, args: e.Args})
}

// notify sends device id a relay-made event, here or on its node.
func (r *Relay) notify(id string, event string, unlinkFrom string) {
	if d := r.device(id); d != nil {
		if unlinkFrom != "" {
			r.order.Lock()
			if l := d.peerOf(); l != nil && l.id == unlinkFrom {
				d.peer.Store(nil)
			}
			r.order.Unlock()
		}
		r.emit(d, event)
		return
	}
	if !r.clustered() {
		return
	}
	if node, ok := r.nodeOf(id); ok && node != r.cfg.Node {
		r.post(node, Envelope{Kind: EnvNotice, To: id, From: unlinkFrom, Event: event, Unlink: unlinkFrom != ""})
	}
}

// handOver passes what this node held for device id, which came back on
// node, to that node, in order, then forgets the device here.
func (r *Relay) handOver(id, node string) {
	r.order.Lock()
	d := r.device(id)
	if d == nil || d.cur.Load() != nil {
		r.order.Unlock()
		r.post(node, Envelope{Kind: EnvHandedOver, To: id})
		return
	}
	r.handing.Add(1)
	defer r.handing.Add(-1)
	r.devices.CompareAndDelete(id, d)
	r.order.Unlock()
	d.mu.Lock()
	d.ended = true
	held := d.held
	d.held, d.heldBytes = nil, 0
	acks := d.acks
	d.acks = nil
	if d.awayTimer != nil {
		d.awayTimer.Stop()
		d.awayTimer = nil
	}
	d.mu.Unlock()
	from := ""
	if l := d.peerOf(); l != nil {
		from = l.id
	}
	for _, m := range held {
		e := Envelope{Kind: EnvRelay, To: id, From: from, Event: m.event, Args: m.args, Size: m.args.Size()}
		if p := acks[m.ackID]; m.ackID != 0 && p != nil {
			delete(acks, m.ackID)
			p.stopTimer()
			e.Corr = r.askRemote(node, p, 0)
		}
		r.post(node, e)
	}
	r.failAcks(ackList(acks), id)
	r.post(node, Envelope{Kind: EnvHandedOver, To: id})
	if l := d.peerOf(); l != nil {
		// The peer's node learns where the device is now, after the
		// handover went out: what it sends next arrives after it.
		r.relink(l.id, id, node)
	}
	r.log.Info("device handed over to the node it came back on", "id", id, "node", node, "held", len(held))
}

// relink tells device id's node (or this one) that its peer is on node.
func (r *Relay) relink(id, peer, node string) {
	if d := r.device(id); d != nil {
		r.order.Lock()
		d.peer.Store(&peerLink{id: peer, node: node, dev: r.device(peer)})
		r.order.Unlock()
		return
	}
	if n, ok := r.nodeOf(id); ok && n != r.cfg.Node {
		r.post(n, Envelope{Kind: EnvLink, To: id, From: peer, PeerNode: node})
	}
}

func ackList(m map[uint64]*pendingAck) []*pendingAck {
	out := make([]*pendingAck, 0, len(m))
	for _, p := range m {
		out = append(out, p)
	}
	return out
}

// handedOver puts a device that came back here from another node on its
// connection, after what the other node held for it. It reports whether
// the device was still waiting.
func (r *Relay) handedOver(id string) bool {
	d := r.device(id)
	if d == nil {
		return false
	}
	d.mu.Lock()
	s, t := d.handover, d.handTimer
	d.handover, d.handTimer = nil, nil
	d.mu.Unlock()
	if s == nil {
		return false
	}
	if t != nil {
		t.Stop()
	}
	r.order.Lock()
	if d.cur.Load() == nil && !d.gone() {
		r.resume(d, s)
	}
	r.order.Unlock()
	return true
}

// takenOverElsewhere lets device id go: a connection on another node took
// its id over, and told its peer.
func (r *Relay) takenOverElsewhere(id string) {
	r.order.Lock()
	d := r.device(id)
	if d != nil {
		r.devices.CompareAndDelete(id, d)
		d.peer.Store(nil)
	}
	r.order.Unlock()
	if d == nil {
		return
	}
	s := d.cur.Load()
	r.emit(d, protocol.EventServerError, protocol.Errorf(protocol.CodeTakenOver, "device id %q was claimed by a new connection", id).Error())
	r.endDevice(d, nil, "taken over")
	if s != nil {
		s.conn.Disconnect()
	}
}

// probeForRemote checks, for a claim on another node, whether device
// e.To's connection here still answers; one that does not is dropped.
func (r *Relay) probeForRemote(e Envelope) {
	gone := true
	if d := r.device(e.To); d != nil {
		if s := d.cur.Load(); s != nil {
			gone = !s.conn.Alive(r.cfg.ReclaimCheck)
			if gone {
				r.log.Info("device id reclaimed from a connection that no longer answers", "id", e.To, "by_node", e.Node)
				r.drop(s, "unresponsive")
				s.conn.Close()
			}
		}
	}
	r.answerBack(e.Node, e.Corr, e.From, protocol.NewArgs(gone))
}

// Reap handles a device whose node left the cluster without a word (its
// lease ran out): as a drop, a paired device is kept away for the resume
// window, its pair standing, and this node runs out the window for it; an
// unpaired one leaves. One node of the cluster reaps each device.
func (r *Relay) Reap(rec Device) {
	r.order.Lock()
	td, kept, ok := r.store.Suspend(rec.ID, rec.ConnID)
	if !ok {
		r.order.Unlock()
		return
	}
	if kept {
		away := td.Device
		away.Away = true
		r.publishShakes(td)
		r.publish(Event{Kind: DeviceAway, ID: rec.ID, Peer: away.Peer, Device: &away, Reason: "node lost"})
	} else {
		r.publishTeardown(td, "node lost", ReasonDisconnect)
	}
	r.order.Unlock()
	r.answerRemoteAskers(rec.ID, td)
	if kept {
		id, connID := rec.ID, rec.ConnID
		r.after(r.cfg.ResumeWindow, func() { r.expireRecord(id, connID) })
		return
	}
	r.stats.disconnects.Add(1)
}

// expireRecord ends a device no node holds, if it is still away on
// connection connID: its pair ends, its peer is told.
func (r *Relay) expireRecord(id, connID string) {
	r.order.Lock()
	rec, ok := r.store.Get(id)
	if !ok || !rec.Away || rec.ConnID != connID {
		r.order.Unlock()
		return
	}
	td, ok := r.store.Remove(id, connID)
	if ok {
		r.publishTeardown(td, "did not come back", ReasonAway)
	}
	r.order.Unlock()
	if ok && td.Pair != nil {
		r.notify(td.Pair.Other(id), protocol.EventDisconnect, id)
	}
}

// answerRemoteAskers answers the sources of the handshakes in which device
// id, gone with its node, was asked: here, or on their nodes.
func (r *Relay) answerRemoteAskers(id string, td *Teardown) {
	refusal := protocol.Errorf(protocol.CodeOffline, "device %q disconnected during pairing", id)
	for _, hs := range td.Handshakes {
		if hs.Dst != id {
			continue
		}
		if src := r.device(hs.Src); src != nil {
			if a := src.takeAsking(hs.ID); a != nil {
				a.timer.Stop()
				r.refuse(src, refusal, a.ack, ackFalse)
			}
			continue
		}
		if node, ok := r.nodeOf(hs.Src); ok && node != r.cfg.Node {
			r.post(node, Envelope{Kind: EnvSettled, To: hs.Src, From: id, Shake: hs.ID, Code: refusal.Code, Text: refusal.Message})
		}
	}
}

// Fence cuts this node off while it cannot reach the shared store: it
// admits nobody (UNAVAILABLE), and closes every connection as a network
// drop would, so that devices reconnect to a node that can; it forgets
// them here, as the other nodes will have reaped them. Unfence lets it
// admit devices again.
func (r *Relay) Fence() {
	if r.fenced.Swap(true) {
		return
	}
	var all []*device
	r.devices.Range(func(k, v any) bool {
		all = append(all, v.(*device))
		r.devices.Delete(k)
		return true
	})
	for _, d := range all {
		s := d.cur.Load()
		d.mu.Lock()
		d.ended = true
		acks := d.acks
		d.acks, d.held = nil, nil
		if d.awayTimer != nil {
			d.awayTimer.Stop()
		}
		d.mu.Unlock()
		for _, p := range acks {
			p.stopTimer()
		}
		d.cur.Store(nil)
		if s != nil {
			s.conn.Close()
		}
	}
	r.log.Warn("fenced: cannot reach the cluster's state; connections closed, devices refused until it can", "devices", len(all))
}

// Unfence lets a fenced node admit devices again.
func (r *Relay) Unfence() {
	if r.fenced.Swap(false) {
		r.log.Info("back in the cluster: admitting devices again")
	}
}

// Fenced reports whether the node is fenced.
func (r *Relay) Fenced() bool { return r.fenced.Load() }

package server

import (
	"time"

	"github.com/p2prelay/p2prelay/protocol"
)

func (r *Relay) handleRegister(s *device, args protocol.Args, ack Ack) {
	if ack == nil {
		r.refuse(s, protocol.Errorf(protocol.CodeBadRequest, "P2P_REGISTER needs an ack callback"), nil, ackFalse)
		return
	}
	first, ok := args.First()
	if !ok {
		r.refuse(s, protocol.Errorf(protocol.CodeBadRequest, "P2P_REGISTER needs a target id"), ack, ackFalse)
		return
	}
	target, err := protocol.ParseTarget(first)
	if err != nil {
		r.refuse(s, protocol.AsError(err), ack, ackFalse)
		return
	}
	if s.pairLimit != nil && !s.pairLimit.AllowN(r.clock.Now(), 1) {
		r.refuse(s, protocol.Errorf(protocol.CodeRateLimited, "more than %g pairing requests a second", r.cfg.PairRate), ack, ackFalse)
		return
	}

	r.order.Lock()
	res, err := r.store.BeginPair(s.id, target)
	var crossed *asking
	if err == nil && res.Handshake != nil {
		id := res.Handshake.ID
		s.setAsking(&asking{shake: id, ack: ack, timer: r.after(r.cfg.PairTimeout, func() { r.timeoutShake(id, target) })})
	}
	if res.Crossed != nil {
		if src := r.device(res.Crossed.Src); src != nil {
			crossed = src.takeAsking(res.Crossed.ID)
		}
	}
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
		ack.answer(true)
	case res.Pair != nil:
		if crossed != nil {
			crossed.timer.Stop()
			crossed.ack.answer(true)
		}
		r.log.Info("paired", "a", res.Pair.A, "b", res.Pair.B)
		ack.answer(true)
	default:
		r.askTarget(*res.Handshake)
	}
}

// setAsking records d's pairing request under way.
func (s *device) setAsking(a *asking) {
	s.mu.Lock()
	s.asking = a
	s.mu.Unlock()
}

// takeAsking returns d's pairing request for handshake id and forgets it,
// or returns nil when it is not under way (answered, or d has ended).
func (s *device) takeAsking(id uint64) *asking {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.asking
	if a == nil || a.shake != id {
		return nil
	}
	s.asking = nil
	return a
}

// gone reports whether d has left the relay.
func (d *device) gone() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ended
}

// askTarget sends the pairing request to the target, listening for both a
// generation-2 ack answer and (through handleGen1Answer) a generation-1
// event answer; the first one counts.
func (r *Relay) askTarget(hs Handshake) {
	t := r.device(hs.Dst)
	if t == nil {
		r.settleShake(hs.ID, false, protocol.Errorf(protocol.CodeOffline, "device %q is offline", hs.Dst))
		return
	}
	r.log.Debug("asking target to pair", "src", hs.Src, "dst", hs.Dst)
	if t.generation() == protocol.Gen1 {
		// Generation 1 answers by event and ignores the ack callback the
		// protocol sends it: nothing waits on it.
		if !r.sendTo(t, message{event: protocol.EventRegister, args: protocol.NewArgs(hs.Src), blind: true}) {
			r.settleShake(hs.ID, false, protocol.Errorf(protocol.CodeOffline, "device %q is offline", hs.Dst))
		}
		return
	}
	// The source's own timer (timeoutShake) refuses a silent target; a
	// failure to reach it is settled here. The answer is awaited longer
	// than the handshake lasts, so that a late yes is told the pair did not
	// form (targetAnswered); later still, it is dropped.
	p := &pendingAck{answered: func(answer protocol.Args) { r.targetAnswered(t, hs, answer.FirstIsTrue()) }, timedOut: func() {}}
	p.onEnd = func() {
		r.settleShake(hs.ID, false, protocol.Errorf(protocol.CodeOffline, "device %q is offline", hs.Dst))
	}
	r.ask(t, p, protocol.EventRegister, protocol.NewArgs(hs.Src), -1, lateAnswers*r.cfg.PairTimeout)
}

func (r *Relay) handleGen1Answer(s *device, accept bool, ack Ack) {
	hs, ok := r.store.Incoming(s.id)
	if !ok {
		// A late answer to a request that already ended. A generation-1
		// answer names no source, so a late "yes" from a device without a
		// peer is answered with P2P_DISCONNECT: it may have taken the
		// source as its target, and must learn the pair did not form.
		r.log.Debug("pairing answer with no request under way", "id", s.id, "accept", accept)
		if accept && s.peerOf() == nil {
			r.emit(s, protocol.EventDisconnect)
		}
		ack.answer()
		return
	}
	r.targetAnswered(s, hs, accept)
	ack.answer()
}

// targetAnswered settles handshake hs with the target's answer. A "yes"
// that comes too late is answered with P2P_DISCONNECT, so that a target
// that took the source as its peer learns the pair did not form, but only
// while the target has no peer: a target paired meanwhile (with anyone,
// the source included) is told nothing, as the news would end the pair it
// is in, in its own eyes.
func (r *Relay) targetAnswered(t *device, hs Handshake, accept bool) {
	if r.settleShake(hs.ID, accept, nil) || !accept || t.gone() {
		return
	}
	if t.peerOf() != nil {
		return
	}
	r.log.Debug("late pairing answer", "id", t.id, "src", hs.Src)
	r.emit(t, protocol.EventDisconnect)
}

func (r *Relay) timeoutShake(id uint64, dst string) {
	r.settleShake(id, false, protocol.Errorf(protocol.CodeTimeout, "device %q did not answer within %s", dst, r.cfg.PairTimeout))
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
	src := r.device(out.Handshake.Src)
	r.order.Unlock()

	var a *asking
	if src != nil {
		a = src.takeAsking(id)
	}
	if a == nil {
		// The source's session ended as the handshake settled, or another
		// relay sharing the store settled it: no ack here to answer.
		return false
	}
	a.timer.Stop()
	if out.Pair != nil {
		r.log.Info("paired", "a", out.Pair.A, "b", out.Pair.B)
		a.ack.answer(true)
		return true
	}
	r.refuse(src, refusal, a.ack, ackFalse)
	return true
}

// paired resets a new pair's counters and publishes it. r.order must be
// held.
func (r *Relay) paired(p Pair) {
	for _, id := range [...]string{p.A, p.B} {
		if d := r.device(id); d != nil {
			d.pairSent.Store(0)
		}
	}
	r.linkPair(p)
	r.stats.pairOutcome("")
	r.publish(Event{Kind: PairCreated, ID: p.A, Peer: p.B})
}

// handleUnregister ends d's pair and tells both sides, d too (the
// original client ends its streams on its own P2P_UNREGISTER). d's ack is
// answered once its peer has handled the news, so that both are free in
// their own eyes when it comes: a generation-2 peer when it calls back,
// leaves, or does not within unregisterWait; a generation-1 peer, which
// cannot answer, at once.
func (r *Relay) handleUnregister(d *device, ack Ack) {
	p, ok := r.unpair(d.id, ReasonUnregister)
	if !ok {
		r.refuse(d, protocol.Errorf(protocol.CodeNotPaired, "you are not paired"), ack, ackFalse)
		return
	}
	r.tellUnpaired(d, nil)
	r.log.Info("pair ended", "a", p.A, "b", p.B, "reason", ReasonUnregister)
	defer r.endStreams(p)
	t := r.device(p.Other(d.id))
	if t == nil || t.generation() == protocol.Gen1 {
		if t != nil {
			r.tellUnpaired(t, nil)
		}
		ack.answer(true)
		return
	}
	done := func() { ack.answer(true) }
	r.tellUnpaired(t, &pendingAck{src: d, onEnd: done})
}

// lateAnswers is how many pairing timeouts a target's answer is awaited.
const lateAnswers = 3

// unregisterWait bounds how long a requester's unregister waits for its
// peer's answer: a live peer answers within a round trip; one that does
// not is a dead connection not yet noticed, and waiting cannot free it.
// The pairing timeout caps it, when shorter.
const unregisterWait = 2 * time.Second

// tellUnpaired tells d its pair ended, in words its generation knows:
// P2P_DISCONNECT for generation 1, P2P_UNREGISTER with an ack for
// generation 2. When w is set, d's answer (or its leaving, or the bound)
// runs w.onEnd.
func (r *Relay) tellUnpaired(d *device, w *pendingAck) {
	if d.generation() == protocol.Gen1 {
		r.emit(d, protocol.EventDisconnect)
		if w != nil {
			w.onEnd()
		}
		return
	}
	if w == nil {
		w = &pendingAck{onEnd: func() {}}
	}
	w.answered = func(protocol.Args) { w.onEnd() }
	w.timedOut = w.onEnd
	r.ask(d, w, protocol.EventUnregister, protocol.Args{}, -1, min(unregisterWait, r.cfg.PairTimeout))
}

// unpair ends id's pair and publishes it. A side that is away has nothing
// left to come back to: it leaves.
func (r *Relay) unpair(id, reason string) (Pair, bool) {
	r.order.Lock()
	p, ok := r.store.Unpair(id)
	if !ok {
		r.order.Unlock()
		return p, false
	}
	r.unlinkPair(p)
	r.publish(Event{Kind: PairEnded, ID: p.A, Peer: p.B, Reason: reason})
	type left struct {
		d  *device
		td *Teardown
	}
	var gone []left
	for _, side := range [...]string{p.A, p.B} {
		rec, ok := r.store.Get(side)
		if d := r.device(side); ok && rec.Away && d != nil {
			if td := r.removeLocked(d, rec.ConnID, "unpaired while away", reason); td != nil {
				gone = append(gone, left{d, td})
			}
		}
	}
	r.order.Unlock()
	for _, g := range gone {
		r.endDevice(g.d, g.td, "unpaired while away")
	}
	return p, true
}

// unpaired tells both sides of a pair the relay ended, in words their
// generation knows.
func (r *Relay) unpaired(p Pair, reason string) {
	for _, id := range [...]string{p.A, p.B} {
		if d := r.device(id); d != nil {
			r.tellUnpaired(d, nil)
		}
	}
	r.endStreams(p)
	r.log.Info("pair ended", "a", p.A, "b", p.B, "reason", reason)
}

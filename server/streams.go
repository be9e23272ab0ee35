package server

import (
	"github.com/p2prelay/p2prelay/protocol"
)

// handleRegisterStream answers P2P_REGISTER_STREAM: (targetID, ack) from a
// device asks its peer, with (ack) alone, whether it takes a stream; only
// the peer's true opens one. A generation-1 peer has no streams.
func (r *Relay) handleRegisterStream(s *device, args protocol.Args, ack Ack) {
	if ack == nil {
		r.refuse(s, protocol.Errorf(protocol.CodeBadRequest, "P2P_REGISTER_STREAM needs an ack callback"), nil, ackFalse)
		return
	}
	first, _ := args.First()
	target, _ := first.(string)
	link := r.peerFor(s, target)
	if link == nil {
		r.refuse(s, protocol.Errorf(protocol.CodeNotPaired, "device %q is not your peer", truncate(target, 64)), ack, ackFalse)
		return
	}
	peer, t := link.id, link.dev
	if t == nil && link.node != "" && r.clustered() {
		p := r.streamAsk(s, peer, ack)
		corr := r.askRemote(link.node, p, r.cfg.PairTimeout)
		r.post(link.node, Envelope{Kind: EnvRequest, Event: protocol.EventRegisterStream, To: peer, From: s.id, Corr: corr})
		return
	}
	switch {
	case t == nil:
		r.refuse(s, protocol.Errorf(protocol.CodeOffline, "device %q is offline", peer), ack, ackFalse)
		return
	case t.generation() == protocol.Gen1:
		r.refuse(s, protocol.Errorf(protocol.CodeRefused, "device %q speaks generation 1, which has no streams", peer), ack, ackFalse)
		return
	}
	r.ask(t, r.streamAsk(s, peer, ack), protocol.EventRegisterStream, protocol.Args{}, -1, r.cfg.PairTimeout)
}

// streamAsk is s's request to open a stream with peer, whose answer, a
// boolean, goes to ack: true, or false with REFUSED, or TIMEOUT.
func (r *Relay) streamAsk(s *device, peer string, ack Ack) *pendingAck {
	p := &pendingAck{src: s, ack: ack, shape: ackFalse}
	p.answered = func(answer protocol.Args) {
		if answer.FirstIsTrue() {
			ack.answer(true)
			return
		}
		r.refuse(s, protocol.Errorf(protocol.CodeRefused, "device %q did not open a stream", peer), ack, ackFalse)
	}
	p.timedOut = func() {
		r.refuse(s, protocol.Errorf(protocol.CodeTimeout, "device %q did not answer the stream request within %s", peer, r.cfg.PairTimeout), ack, ackFalse)
	}
	return p
}

// endStreams fails the stream chunks still waiting between the two sides
// of an ended pair: their writers' acks get NOT_PAIRED.
func (r *Relay) endStreams(p Pair) {
	for _, side := range [...]string{p.A, p.B} {
		t := r.device(side)
		if t == nil {
			continue
		}
		other := p.Other(side)
		t.mu.Lock()
		var held []*pendingAck
		for id, a := range t.acks {
			if a.stream && a.asker() == other {
				held = append(held, a)
				delete(t.acks, id)
			}
		}
		t.mu.Unlock()
		for _, a := range held {
			r.failAck(a, protocol.Errorf(protocol.CodeNotPaired, "the pair with %q ended", side))
		}
	}
}

package server

import (
	"sort"
	"strconv"
	"time"

	"github.com/p2prelay/p2prelay/protocol"
)

func (r *Relay) handleEmit(s *device, args protocol.Args, ack Ack, withAck bool) {
	if withAck && ack == nil {
		r.refuse(s, protocol.Errorf(protocol.CodeBadRequest, "P2P_EMIT_ACKNOWLEDGE needs an ack callback"), nil, ackError)
		return
	}
	payload, ok := args.First()
	if !ok {
		r.refuse(s, protocol.Errorf(protocol.CodeBadRequest, "relay request needs a payload {targetClientId, event, args}"), ack, ackError)
		return
	}
	req, err := protocol.ParseRelayRequest(payload)
	if err != nil {
		r.refuse(s, protocol.AsError(err), ack, ackError)
		return
	}
	if req.Event == protocol.EventEmitStream && !withAck {
		r.refuse(s, protocol.Errorf(protocol.CodeReservedEvent, "%s is relayed only with P2P_EMIT_ACKNOWLEDGE: its reader answers every chunk", req.Event), ack, ackError)
		return
	}
	size, perr := req.Args.Measure(r.cfg.MaxPayload)
	if perr != nil {
		r.refuse(s, perr, ack, ackError)
		return
	}
	link := r.peerFor(s, req.Target)
	if link == nil {
		r.refuse(s, protocol.Errorf(protocol.CodeNotPaired, "device %q is not your peer", req.Target), ack, ackError)
		return
	}
	t := link.dev
	if t == nil && link.node != "" && r.clustered() {
		r.relayRemote(s, link, req, size, ack, withAck)
		return
	}
	if t == nil {
		r.refuse(s, protocol.Errorf(protocol.CodeOffline, "device %q is offline", link.id), ack, ackError)
		return
	}
	if !withAck {
		// Counted before it goes: the peer may read it, and anyone it
		// tells may read the counts, before sendTo returns.
		r.countRelayed(s, t, req.Event, size)
		if !r.sendTo(t, message{event: req.Event, args: req.Args}) {
			r.uncountRelayed(s, t, size)
			r.refuse(s, offline(t), ack, ackError)
			return
		}
		ack.answer()
		return
	}
	r.forwardWithAck(s, t, req, size, ack)
}

// offline is the refusal of a message for a device that left, or is away
// with as much held for it as it may hold.
func offline(t *device) *protocol.Error {
	if t.gone() {
		return protocol.Errorf(protocol.CodeOffline, "device %q is offline", t.id)
	}
	return protocol.Errorf(protocol.CodeOffline, "device %q is away and holds as many messages as it may", t.id)
}

// forwardWithAck relays a request whose answer is piped back to the source.
// A stream chunk's answer is the reader's "send more", which may be long
// in coming: it has no timeout.
func (r *Relay) forwardWithAck(s, t *device, req protocol.RelayRequest, size int, ack Ack) {
	p := &pendingAck{src: s, ack: ack, stream: req.Event == protocol.EventEmitStream}
	timeout := r.cfg.AckTimeout
	if p.stream {
		timeout = 0
	}
	event := req.Event
	if watched(s, t) {
		p.start = r.clock.Now().UnixNano()
	}
	p.answered = func(answer protocol.Args) {
		answerSize, perr := answer.Measure(r.cfg.MaxPayload)
		if perr != nil {
			perr.Message = "the answer of " + strconv.Quote(t.id) + ": " + perr.Message
			r.failAck(p, perr)
			return
		}
		r.stats.acks.Add(1)
		if p.start != 0 {
			rtt := time.Duration(r.clock.Now().UnixNano() - p.start)
			r.tap(t, Traffic{Dir: DirIn, Event: event, Size: answerSize, Ack: true, RTT: rtt})
			r.tap(s, Traffic{Dir: DirOut, Event: event, Size: answerSize, Ack: true, RTT: rtt})
		}
		p.ack(answer)
	}
	p.timedOut = func() {
		r.failAck(p, protocol.Errorf(protocol.CodeTimeout, "device %q did not answer %q within %s", t.id, event, r.cfg.AckTimeout))
	}
	r.ask(t, p, event, req.Args, size, timeout)
}

// relayRemote relays a message to s's peer on another node; an answer,
// wanted with withAck, comes back from there.
func (r *Relay) relayRemote(s *device, link *peerLink, req protocol.RelayRequest, size int, ack Ack, withAck bool) {
	e := Envelope{Kind: EnvRelay, To: link.id, From: s.id, Event: req.Event, Args: req.Args, Size: size}
	if withAck {
		p := &pendingAck{src: s, ack: ack, stream: req.Event == protocol.EventEmitStream}
		event := req.Event
		p.answered = func(answer protocol.Args) {
			if perr := answer.Check(r.cfg.MaxPayload); perr != nil {
				perr.Message = "the answer of " + strconv.Quote(link.id) + ": " + perr.Message
				r.failAck(p, perr)
				return
			}
			r.stats.acks.Add(1)
			p.ack(answer)
		}
		p.timedOut = func() {
			r.failAck(p, protocol.Errorf(protocol.CodeTimeout, "device %q did not answer %q within %s", link.id, event, r.cfg.AckTimeout))
		}
		timeout := r.cfg.AckTimeout
		if p.stream {
			timeout = 0
		}
		e.Corr = r.askRemote(link.node, p, timeout)
	}
	r.post(link.node, e)
	r.countRelayed(s, nil, req.Event, size)
	if !withAck {
		ack.answer()
	}
}

// ask sends t a request on p.src's behalf and records it in t's acks until
// t answers (p.answered), timeout passes (p.timedOut; 0: no timeout), or
// t leaves (p fails OFFLINE). A relayed request (size >= 0, its
// arguments' size) counts as a message p.src relayed, and is held to
// --max-pending-acks; the relay's own (size < 0) are not. A request that
// cannot be sent fails at once, OFFLINE (or RATE_LIMITED over the bound).
func (r *Relay) ask(t *device, p *pendingAck, event string, args protocol.Args, size int, timeout time.Duration) {
	relayed := size >= 0
	t.mu.Lock()
	if t.ended {
		t.mu.Unlock()
		r.failAck(p, protocol.Errorf(protocol.CodeOffline, "device %q is offline", t.id))
		return
	}
	if relayed && r.cfg.MaxPendingAcks > 0 && len(t.acks) >= r.cfg.MaxPendingAcks {
		n := len(t.acks)
		t.mu.Unlock()
		r.failAck(p, protocol.Errorf(protocol.CodeRateLimited, "device %q has %d acks unanswered", t.id, n))
		return
	}
	t.nextAck++
	id := t.nextAck
	p.via = t.cur.Load()
	t.acks[id] = p
	if timeout > 0 {
		p.timer = r.after(timeout, func() { r.ackTimedOut(t, id) })
	}
	t.mu.Unlock()
	if relayed {
		// Counted before it goes, as in handleRelay.
		r.countRelayed(p.src, t, event, size)
	}
	if !r.sendTo(t, message{event: event, args: args, ackID: id}) {
		if relayed {
			r.uncountRelayed(p.src, t, size)
		}
		if t.takeAck(id) != nil {
			p.stopTimer()
			r.failAck(p, offline(t))
		}
		return
	}
}

// ackAnswered takes t's answer to its pending ack id, which came on s.
func (r *Relay) ackAnswered(t *device, s *Session, id uint64, answer protocol.Args) {
	p := t.takeAck(id)
	if p == nil {
		// Too late: the relay stopped waiting. The connection forgot this
		// one as it handed it over.
		if s.stale.Add(-1) < 0 {
			s.stale.Add(1)
		}
		return
	}
	p.stopTimer()
	p.answered(answer)
}

// ackTimedOut gives up waiting for t's answer to its pending ack id. The
// connection it went out on keeps the ack until t answers or leaves: a
// device that leaves more than staleLimit of them unanswered is not
// listening, and its connection is closed (with a pair, it may come back
// within its resume window).
func (r *Relay) ackTimedOut(t *device, id uint64) {
	p := t.takeAck(id)
	if p == nil {
		return
	}
	if s := p.via; s != nil && int(s.stale.Add(1)) > r.staleLimit() {
		r.log.Info("device leaves too many requests unanswered: closing its connection", "id", t.id, "unanswered", s.stale.Load())
		r.drop(s, "unresponsive")
		s.conn.Close()
	}
	p.timedOut()
}

// staleLimit is how many requests a connection may leave unanswered past
// their timeout.
func (r *Relay) staleLimit() int {
	return max(r.cfg.MaxPendingAcks, DefaultMaxPendingAcks)
}

// countRelayed counts a message s sent that the relay passed on to t;
// refused ones count as refusals only.
// Either side may be on another node (nil): its node counts it. A message
// counts once in the cluster's total, on its sender's node.
func (r *Relay) countRelayed(s, t *device, event string, size int) {
	if s != nil {
		s.sent.Add(1)
		s.pairSent.Add(1)
		r.stats.messages.Add(1)
		s.counters.bytesIn.Add(uint64(size))
		r.tap(s, Traffic{Dir: DirIn, Event: event, Size: size})
	}
	if t != nil {
		t.counters.msgsOut.Add(1)
		t.counters.bytesOut.Add(uint64(size))
		r.tap(t, Traffic{Dir: DirOut, Event: event, Size: size})
	}
}

// uncountRelayed takes back the counts of countRelayed for a message that
// could not go (refused ones count as refusals only).
func (r *Relay) uncountRelayed(s, t *device, size int) {
	if s != nil {
		s.sent.Add(^uint64(0))
		s.pairSent.Add(^uint64(0))
		r.stats.messages.Add(^uint64(0))
		s.counters.bytesIn.Add(^uint64(size - 1))
	}
	if t != nil {
		t.counters.msgsOut.Add(^uint64(0))
		t.counters.bytesOut.Add(^uint64(size - 1))
	}
}

// takeAck returns the pending ack id that s owes and forgets it, or nil
// when it was answered, timed out or failed already.
func (s *device) takeAck(id uint64) *pendingAck {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.acks[id]
	delete(s.acks, id)
	return p
}

// failAck ends a pending request that will get no answer: by its onEnd,
// or by answering its source's ack with err.
func (r *Relay) failAck(p *pendingAck, err *protocol.Error) {
	if p.onEnd != nil {
		p.onEnd()
		return
	}
	r.refuse(p.src, err, p.ack, p.shape)
}

func (r *Relay) handleListClients(s *device, ack Ack) {
	if ack == nil {
		r.refuse(s, protocol.Errorf(protocol.CodeBadRequest, "LIST_CLIENTS needs an ack callback"), nil, ackError)
		return
	}
	ack.answer(r.DeviceIDs())
}

// handleStatus answers P2P_STATUS with the device's id and peer.
func (r *Relay) handleStatus(d *device, ack Ack) {
	if ack == nil {
		r.refuse(d, protocol.Errorf(protocol.CodeBadRequest, "P2P_STATUS needs an ack callback"), nil, ackError)
		return
	}
	var peer any
	if l := d.peerOf(); l != nil {
		peer = l.id
	}
	ack.answer(map[string]any{"id": d.id, "peer": peer})
}

// handleListDevices answers P2P_LIST_DEVICES: ([{"available": bool}], ack)
// with [{id, available}], only the available devices when asked.
func (r *Relay) handleListDevices(s *device, args protocol.Args, ack Ack) {
	if ack == nil {
		r.refuse(s, protocol.Errorf(protocol.CodeBadRequest, "P2P_LIST_DEVICES needs an ack callback"), nil, ackError)
		return
	}
	onlyAvailable := false
	if first, ok := args.First(); ok && first != nil {
		q, ok := first.(map[string]any)
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
	ack.answer(out)
}

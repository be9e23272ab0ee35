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
	if perr := req.Args.Check(r.cfg.MaxPayload); perr != nil {
		r.refuse(s, perr, ack, ackError)
		return
	}
	peer, ok := r.store.Peer(s.id)
	if !ok || peer != req.Target {
		r.refuse(s, protocol.Errorf(protocol.CodeNotPaired, "device %q is not your peer", req.Target), ack, ackError)
		return
	}
	t := r.device(peer)
	if t == nil {
		r.refuse(s, protocol.Errorf(protocol.CodeOffline, "device %q is offline", peer), ack, ackError)
		return
	}
	if !withAck {
		if !r.sendTo(t, req.Event, req.Args, nil) {
			r.refuse(s, offline(t), ack, ackError)
			return
		}
		r.countRelayed(s)
		ack.answer()
		return
	}
	r.forwardWithAck(s, t, req, ack)
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
func (r *Relay) forwardWithAck(s, t *device, req protocol.RelayRequest, ack Ack) {
	p := &pendingAck{src: s, ack: ack, stream: req.Event == protocol.EventEmitStream}
	timeout := r.cfg.AckTimeout
	if p.stream {
		timeout = 0
	}
	event := req.Event
	r.ask(t, p, event, req.Args, timeout, true, func(answer protocol.Args) {
		if perr := answer.Check(r.cfg.MaxPayload); perr != nil {
			perr.Message = "the answer of " + strconv.Quote(t.id) + ": " + perr.Message
			r.failAck(p, perr)
			return
		}
		r.stats.acks.Add(1)
		p.ack(answer)
	}, func() {
		r.failAck(p, protocol.Errorf(protocol.CodeTimeout, "device %q did not answer %q within %s", t.id, event, r.cfg.AckTimeout))
	})
}

// ask sends t a request on p.src's behalf and records it in t's acks until
// t answers (answered), timeout passes (timedOut; 0: no timeout), or t
// leaves (p fails OFFLINE). relayed counts it as a message p.src relayed,
// and holds it to --max-pending-acks. A request that cannot be sent
// fails at once, OFFLINE (or RATE_LIMITED over the bound).
func (r *Relay) ask(t *device, p *pendingAck, event string, args protocol.Args, timeout time.Duration, relayed bool, answered func(protocol.Args), timedOut func()) {
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
		p.timer = r.after(timeout, func() {
			if t.takeAck(id) != nil {
				timedOut()
			}
		})
	}
	t.mu.Unlock()
	if !r.sendTo(t, event, args, func(answer protocol.Args) {
		if t.takeAck(id) == nil {
			return
		}
		p.stopTimer()
		answered(answer)
	}) {
		if t.takeAck(id) != nil {
			p.stopTimer()
			r.failAck(p, offline(t))
		}
		return
	}
	if relayed {
		r.countRelayed(p.src)
	}
}

// countRelayed counts a message s sent that the relay passes on; refused
// ones count as refusals only.
func (r *Relay) countRelayed(s *device) {
	s.sent.Add(1)
	s.pairSent.Add(1)
	r.stats.messages.Add(1)
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
	if p, ok := r.store.Peer(d.id); ok {
		peer = p
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

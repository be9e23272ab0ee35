package peer

import (
	"context"
	"fmt"
	"time"

	client "github.com/zishang520/socket.io/clients/socket/v3"
	sio "github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/p2prelay/p2prelay/protocol"
)

// The socket's listeners (installed by adopt, which drops what a socket no
// longer current or a closed peer hears). They run on the socket's
// goroutine, in the order the packets arrived: they update the state at
// once and queue the callbacks for the dispatcher.

// onAny receives every event the relay sends.
func (p *Peer) onAny(args ...any) {
	if len(args) == 0 {
		return
	}
	name, _ := args[0].(string)
	rest, answer := protocol.SplitAck(args[1:])
	ack := p.guarded(answer)
	if name != protocol.EventDisconnect && name != protocol.EventServerError {
		p.mu.Lock()
		p.gonePeer = "" // the relay said something else since
		p.mu.Unlock()
	}
	switch name {
	case protocol.EventRegister:
		p.onPairRequest(rest, ack)
	case protocol.EventUnregister:
		// The relay tells both sides of an unregister, the asker first.
		p.mu.Lock()
		why := ReasonEnded
		if p.unpairing {
			why = ReasonUnregistered
		}
		p.mu.Unlock()
		p.endPair(why)
		if ack != nil {
			ack([]any{}, nil)
		}
	case protocol.EventDisconnect:
		p.endPair(ReasonPeerGone)
	case protocol.EventRegisterStream:
		p.onStreamRequest(ack)
	case protocol.EventEmitStream:
		p.onChunk(rest, ack)
	case protocol.EventServerError:
		p.onServerError(rest)
	default:
		p.onEvent(name, rest, ack)
	}
}

// onPairRequest answers the relay's P2P_REGISTER(source, ack): yes when
// source is already the peer, no when busy, else what Config.Accept says.
func (p *Peer) onPairRequest(args []any, ack sio.Ack) {
	src := firstString(args)
	if ack == nil || protocol.ValidateID(src) != nil {
		p.log.Debug("malformed pair request", "args", args)
		return
	}
	p.mu.Lock()
	var accept, fresh bool
	switch {
	case src == p.peer:
		accept = true
	case p.peer != "", p.pairing != "" && p.pairing != src:
		accept = false
	default:
		accept = p.cfg.Accept(src)
		fresh = accept
	}
	if fresh {
		p.peer, p.held, p.gonePeer = src, false, ""
	}
	p.mu.Unlock()
	ack([]any{accept}, nil)
	p.log.Debug("pair request", "from", src, "accepted", accept)
	p.notify(Notice{Kind: PairRequest, Peer: src, Accepted: accept})
	if fresh {
		p.notify(Notice{Kind: Paired, Peer: src})
	}
}

// endPair forgets the peer, if any, and says why. A peer that went away
// is remembered until the relay says anything else: if the relay is
// shutting down, it is the device to pair again with (Config.Repair).
func (p *Peer) endPair(why Reason) {
	p.mu.Lock()
	old := p.peer
	p.peer, p.held, p.gonePeer = "", false, ""
	if why == ReasonPeerGone {
		p.gonePeer = old
	}
	p.mu.Unlock()
	if old != "" {
		p.endStreams(fmt.Errorf("%w: the pair with %q ended (%s)", ErrStreamEnded, old, why))
		p.notify(Notice{Kind: Unpaired, Peer: old, Reason: string(why)})
	}
}

// onServerError keeps the relay's reason for the answers that carry none:
// a refused pairing (its ack answers only false) and a closed connection.
func (p *Peer) onServerError(args []any) {
	text := firstString(args)
	e := protocol.ParseServerError(text)
	p.log.Debug("relay error", "code", string(e.Code), "message", e.Message)
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e.Code {
	case protocol.CodeKicked, protocol.CodeTakenOver, protocol.CodeShuttingDown,
		protocol.CodeIDInUse, protocol.CodeUnauthorized, protocol.CodeBadID, protocol.CodeServerFull:
		p.connErr = e
	}
	if p.pairing != "" && pairingRefusal(e.Code) {
		// The refusal of the Pair under way, most likely: the relay sends
		// it just before the ack's false. (A refusal with the same code of
		// another request at the same moment could be taken for it.)
		p.pairErr = e
	}
}

// pairingRefusal reports whether the relay refuses a P2P_REGISTER with
// this code.
func pairingRefusal(code protocol.Code) bool {
	switch code {
	case protocol.CodeOffline, protocol.CodeSelf, protocol.CodeBusy, protocol.CodeRefused,
		protocol.CodeTimeout, protocol.CodeBadID, protocol.CodeBadRequest, protocol.CodeRateLimited:
		return true
	}
	return false
}

// onEvent hands a relayed event to its handler.
func (p *Peer) onEvent(name string, args []any, ack sio.Ack) {
	p.mu.Lock()
	from := p.peer
	h := p.handlers[name]
	p.mu.Unlock()
	if h == nil {
		h = p.cfg.OnEvent
	}
	ev := Event{Name: name, Args: args, From: from}
	if ack != nil {
		ev.reply = &reply{fn: ack}
	}
	if ev.Args == nil {
		ev.Args = []any{}
	}
	if h == nil {
		p.log.Debug("event without a handler", "event", name)
		return
	}
	p.disp.push(func() { h(ev) })
}

// onConnect runs when the relay accepted connection s (the relay has
// registered the device by then), once per socket. After a reconnect it
// asks the relay whether it kept the pair, or pairs again (Config.Repair).
func (p *Peer) onConnect(s *client.Socket) {
	p.mu.Lock()
	if p.upSock == s || p.sock != s || p.closed {
		p.mu.Unlock()
		return
	}
	p.upSock = s
	again := p.everUp
	p.everUp = true
	p.connErr = nil
	p.retryDelay = p.cfg.ReconnectDelay
	held, was := p.held, p.peer
	if !held {
		was = p.repairPeer
	}
	p.repairPeer = ""
	p.mu.Unlock()
	p.log.Debug("connected", "again", again)
	if !again {
		return
	}
	p.notify(Notice{Kind: Reconnected, Peer: was})
	switch {
	case held:
		// The answer is handled in order with the packets around it.
		if _, err := p.send(func(vals []any) { p.settlePair(was, vals) }, "status", protocol.EventStatus); err != nil {
			p.log.Debug("status", "err", err)
		}
	case was != "" && p.cfg.Repair:
		p.repair(was)
	}
}

// settlePair takes the relay's answer to P2P_STATUS after a reconnect: the
// pair with was resumed, or it ended while the device was away.
func (p *Peer) settlePair(was string, vals []any) {
	kept := ""
	if len(vals) > 0 {
		if m, ok := vals[0].(map[string]any); ok {
			kept, _ = m["peer"].(string)
		}
	}
	p.mu.Lock()
	if !p.held || p.peer != was {
		p.mu.Unlock()
		return // the pair changed since
	}
	p.held = false
	p.mu.Unlock()
	if kept == was {
		p.log.Debug("pair resumed", "peer", was)
		p.notify(Notice{Kind: Resumed, Peer: was})
		return
	}
	p.endPair(ReasonConnectionLost)
	if kept != "" {
		// Paired with another device meanwhile (not what p2pd does).
		p.mu.Lock()
		p.peer = kept
		p.mu.Unlock()
		p.notify(Notice{Kind: Paired, Peer: kept})
		return
	}
	if p.cfg.Repair {
		p.repair(was)
	}
}

// onDisconnect runs when connection s, the current one, closed. One that
// was never up is a failed attempt, which Dial or reconnect handles. A
// pair is held while the device reconnects: the relay may keep it.
func (p *Peer) onDisconnect(s *client.Socket, args ...any) {
	reason := firstString(args)
	p.mu.Lock()
	if p.upSock != s {
		p.mu.Unlock()
		return
	}
	p.upSock = nil // a socket given to New connects again itself
	connErr := p.connErr
	refused := connErr != nil && permanentRefusal(connErr.Code)
	final := p.owned && (refused || p.cfg.NoReconnect)
	if !refused && !final {
		p.held = p.peer != ""
		p.repairPeer = p.peer
		if p.repairPeer == "" && connErr != nil && connErr.Code == protocol.CodeShuttingDown {
			p.repairPeer = p.gonePeer
		}
	}
	p.mu.Unlock()
	p.stopRepair()
	p.endStreams(fmt.Errorf("%w: the connection dropped (%s)", ErrStreamEnded, reason))

	var err error
	if connErr != nil {
		err = connErr
	}
	p.log.Debug("disconnected", "reason", reason, "err", err)
	if refused || final {
		p.endPair(ReasonConnectionLost)
	}
	if final {
		if err == nil {
			err = fmt.Errorf("connection lost: %s", reason)
		}
		p.stop(err)
		return
	}
	p.notify(Notice{Kind: Disconnected, Reason: reason, Err: err})
	if p.owned {
		go p.reconnect()
	}
}

// reconnect connects again, with the same id, until it succeeds, the relay
// refuses the device for good, or the peer stops. The wait between tries
// doubles from Config.ReconnectDelay up to Config.ReconnectDelayMax.
func (p *Peer) reconnect() {
	for {
		p.mu.Lock()
		d := p.retryDelay
		p.retryDelay = min(2*d, p.cfg.ReconnectDelayMax)
		p.mu.Unlock()
		select {
		case <-p.ctx.Done():
			return
		case <-time.After(d):
		}
		ctx, cancel := context.WithTimeout(p.ctx, p.cfg.Timeout)
		err := p.connect(ctx)
		cancel()
		switch code := protocol.CodeOf(err); {
		case err == nil:
			return // onConnect ended the loop's turn
		case p.ctx.Err() != nil:
			return
		case permanentRefusal(code):
			p.stop(err)
			return
		default:
			// ID_IN_USE (the relay has not yet noticed the old connection
			// is gone), SHUTTING_DOWN, or the relay is unreachable.
			p.log.Debug("reconnect failed", "err", err)
		}
	}
}

// firstString returns the first argument when it is a string, else "".
func firstString(args []any) string {
	if len(args) == 0 {
		return ""
	}
	s, _ := args[0].(string)
	return s
}

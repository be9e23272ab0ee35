package socketio

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	engine "github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// What an Engine.IO connection may send before it is admitted: before
// the relay took it under a device id (or another namespace, the admin
// one, let it in). A device sends its socket.io CONNECT and nothing else
// until it is told it is connected, so these are generous; they bound what
// anyone who can reach the relay makes it hold without saying who they
// are. Past them, or on anything but a CONNECT or an Engine.IO control
// packet, the connection is closed. The relay's own transports apply
// them, on every message, before anything is decoded.
const (
	preAuthBytes   = 16 << 10 // bytes of packets, all together
	preAuthPackets = 32       // packets
)

var (
	errNotAdmitted = errors.New("only a socket.io CONNECT may come before the connection is admitted")
	errPreAuthSize = fmt.Errorf("more than %d bytes or %d packets before the connection is admitted", preAuthBytes, preAuthPackets)
	errAttachments = errors.New("binary attachments announced and not sent within the ping timeout")
)

// What the binding emits on an Engine.IO connection once the relay took
// it under a device id, before the device is told (eventAdmitted), or
// refused it (eventRefused): either ends the join under way.
const (
	eventAdmitted = "p2p:admitted"
	eventRefused  = "p2p:refused"
)

// admission is what the guard knows of one connection before it is
// admitted. The zero value is a connection that is not.
type admission struct {
	admitted atomic.Bool
	bytes    atomic.Int64 // sent before admission
	packets  atomic.Int64
}

// isAdmitted reports whether st's connection is admitted; a connection the
// gate does not know (nil) is not.
func (st *gateState) isAdmitted() bool { return st != nil && st.adm.admitted.Load() }

// admit marks st's connection admitted and stops charging it.
func (st *gateState) admit() { st.adm.admitted.Store(true) }

// budgetLeft is how many more bytes st's connection may send before it is
// admitted; 0 for a connection the gate does not know.
func (st *gateState) budgetLeft() int64 {
	if st == nil {
		return 0
	}
	return max(0, preAuthBytes-st.adm.bytes.Load())
}

// charge accounts for one packet, raw as the transport received it (text:
// the Engine.IO type as its first byte; binary), from a connection that is
// not admitted, and returns why it may not go on, or nil.
func (st *gateState) charge(text bool, raw []byte) error {
	if st == nil {
		return errNotAdmitted
	}
	if st.adm.packets.Add(1) > preAuthPackets || st.adm.bytes.Add(int64(len(raw))) > preAuthBytes {
		return errPreAuthSize
	}
	if !preAuthPacket(text, raw) {
		return errNotAdmitted
	}
	return nil
}

// preAuthPacket reports whether a packet may come before admission: an
// Engine.IO control packet (ping, pong, upgrade, close, noop) or a
// socket.io CONNECT. Binary packets may not: the socket.io library's
// decoder would hold what their header announced.
func preAuthPacket(text bool, raw []byte) bool {
	if !text || len(raw) == 0 {
		return false
	}
	switch raw[0] {
	case '4': // message: only a socket.io CONNECT
		return len(raw) >= 2 && raw[1] == '0'
	case 'b', '0': // base64 binary, open
		return false
	}
	return true
}

// admitting runs for a message of a connection that is not admitted: it
// waits for a namespace join under way (a client that sends the instant it
// is told it joined may be quicker than the library's record of it, see
// connectGate) and reports whether the connection is admitted now.
func (st *gateState) admitting() bool {
	if st == nil {
		return false
	}
	st.await()
	return st.isAdmitted()
}

// boundOutbound bounds what waits unsent for a polling device: the
// engine's write buffer, which holds packets while the device has no poll
// request open. A device that stops polling (it may still POST) would let
// it grow without end; one that lets more than maxPending wait is closed
// as one whose websocket stops reading is (coalescingConn): same bound,
// same error. Counted only while the connection polls; after an upgrade
// the websocket's own bound holds.
func boundOutbound(c engine.Socket) {
	t := c.Transport()
	if t == nil || t.Name() != transports.POLLING {
		return
	}
	var pending atomic.Int64
	var over atomic.Bool
	created := types.EventListener(func(args ...any) {
		if len(args) == 0 {
			return
		}
		p, _ := args[0].(*packet.Packet)
		if pending.Add(int64(packetSize(p))) > maxPending && over.CompareAndSwap(false, true) {
			// Not on the sender's goroutine, which may hold the relay's
			// locks: closing reaches the relay through Leave.
			go c.Transport().OnError("peer is not polling", errSlowReader)
		}
	})
	flushed := types.EventListener(func(args ...any) {
		if len(args) == 0 {
			return
		}
		wbuf, _ := args[0].([]*packet.Packet)
		n := 0
		for _, p := range wbuf {
			n += packetSize(p)
		}
		pending.Add(-int64(n))
	})
	_ = c.On("packetCreate", created)
	_ = c.On("flush", flushed)
	_ = c.Once("upgrade", func(...any) {
		c.RemoveListener("packetCreate", created)
		c.RemoveListener("flush", flushed)
	})
}

// packetSize is what an outgoing packet holds in memory, about: its
// buffer's capacity where it has one (the library's buffers of binary
// attachments are often twice their length).
func packetSize(p *packet.Packet) int {
	if p == nil {
		return 0
	}
	switch d := p.Data.(type) {
	case interface{ Cap() int }:
		return d.Cap() + 1
	case interface{ Len() int }:
		return d.Len() + 1
	}
	return 1
}

// attachments tracks the binary attachments a connection announced and
// has not sent yet. The socket.io library's decoder holds a packet that
// announces attachments, decoded (about 19 bytes for each byte of JSON),
// until they all come or the connection ends: a connection that announces
// them and does not send them is closed. A device sends them right after
// the packet, each as soon as the one before is through: it has the ping
// timeout for each.
type attachments struct {
	left  int
	wait  time.Duration
	timer *time.Timer
}

// announce notes a packet that announces n attachments: past wait without
// the next, close is called.
func (a *attachments) announce(n int, wait time.Duration, close func()) {
	a.left, a.wait = n, wait
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
	if n > 0 {
		a.timer = time.AfterFunc(wait, close)
	}
}

// received notes one attachment.
func (a *attachments) received() {
	if a.left == 0 {
		return
	}
	a.left--
	if a.left == 0 {
		a.timer.Stop()
		a.timer = nil
		return
	}
	a.timer.Reset(a.wait)
}

// stop forgets what was announced.
func (a *attachments) stop() {
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
	a.left = 0
}

// announced returns how many attachments a socket.io text packet
// announces: a BINARY_EVENT or BINARY_ACK ("51-[...]"), 0 for anything
// else.
func announced(b []byte) int {
	if len(b) < 3 || (b[0] != '5' && b[0] != '6') {
		return 0
	}
	n := 0
	for i := 1; i < len(b) && i <= maxLengthDigits; i++ {
		switch c := b[i]; {
		case c == '-':
			return n
		case c >= '0' && c <= '9':
			n = n*10 + int(c-'0')
		default:
			return 0
		}
	}
	return 0
}

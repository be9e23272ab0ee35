package socketio

import (
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// pollingCtor builds the relay's HTTP long-polling transport: the
// library's, through the engine's TransportCtor extension point, with what
// comes in decoded and bounded by the relay (see pollTransport).
type pollingCtor struct{ gate *connectGate }

func (c pollingCtor) New(ctx *types.HttpContext) transports.Transport {
	p := &pollTransport{Polling: transports.MakePolling(), gate: c.gate, sid: ctx.Query().Peek("sid")}
	p.Prototype(p)
	p.Construct(ctx)
	return p
}

func (pollingCtor) Name() string          { return transports.POLLING }
func (pollingCtor) HandlesUpgrades() bool { return false }
func (pollingCtor) UpgradesTo() []string {
	return []string{transports.WEBSOCKET, transports.WEBTRANSPORT}
}

// pollTransport is the library's polling transport with the relay's
// guards where data comes in:
//
//   - payloads are decoded one packet at a time (eachPacket), at most
//     maxPayloadPackets each;
//   - before its connection is admitted, a POST may carry preAuthBytes at
//     most, read no further, and only what may come before admission
//     (guard.go);
//   - the engine's pings are answered without a race (pongs).
type pollTransport struct {
	transports.Polling
	gate  *connectGate
	sid   string // from the request that made it, if any
	st    atomic.Pointer[gateState]
	pongs pongs
}

// state returns what the gate knows of the transport's connection.
func (p *pollTransport) state() *gateState {
	if st := p.st.Load(); st != nil {
		return st
	}
	id := p.Sid()
	if id == "" {
		id = p.sid
	}
	st := p.gate.state(id)
	if st != nil {
		p.st.Store(st)
	}
	return st
}

// OnRequest caps the body of a POST from a connection that is not
// admitted at what it may still send, so that no more is read: the
// library reads a whole body, up to the engine's largest message (2 MiB
// under p2pd's defaults), before anything looks at it.
func (p *pollTransport) OnRequest(ctx *types.HttpContext) {
	if ctx.Method() == http.MethodPost {
		if st := p.state(); !st.isAdmitted() && !st.admitting() {
			left := st.budgetLeft()
			req := ctx.Request()
			if req.ContentLength > left {
				p.OnError("too much data before admission", errPreAuthSize)
				_ = ctx.SetStatusCode(http.StatusRequestEntityTooLarge)
				_, _ = ctx.Write(nil)
				return
			}
			if req.Body != nil {
				req.Body = limitedBody{io.LimitReader(req.Body, left+1), req.Body}
			}
		}
	}
	p.Polling.OnRequest(ctx)
}

// limitedBody reads at most what its LimitReader lets through and closes
// the request's body.
type limitedBody struct {
	io.Reader
	io.Closer
}

// OnData decodes a payload and hands its packets on one at a time. A
// malformed payload, one with too many packets, or one that breaks the
// limits before admission closes the connection; the packets before the
// fault have been handled.
func (p *pollTransport) OnData(data types.BufferInterface) {
	st := p.state()
	pre := !st.isAdmitted()
	_, binary := data.(*types.BytesBuffer)
	var fault error
	err := eachPacket(p.Protocol(), data.Bytes(), binary, func(pk *packet.Packet, text bool, raw []byte) bool {
		if pre {
			if fault = st.charge(text, raw); fault != nil {
				return false
			}
		}
		if pk.Type == packet.CLOSE {
			p.OnClose()
			return false
		}
		p.OnPacket(pk)
		if pk.Type == packet.PONG && p.Protocol() == 4 {
			p.pongs.answered(p.OnPacket)
		}
		return true
	})
	if err == nil {
		err = fault
	}
	if err != nil {
		p.OnError("bad payload", err)
	}
}

// Send notes the engine's pings (see pongs) and sends.
func (p *pollTransport) Send(packets []*packet.Packet) {
	for _, pk := range packets {
		if pk.Type == packet.PING {
			p.pongs.pinged(p.gate)
		}
	}
	p.Polling.Send(packets)
}

// pongs answers a race in the engine's heartbeat (Engine.IO 4). The
// engine sends a ping, and only then arms the timer that the device's
// pong clears (servers/engine socket.go, schedulePing and
// resetPingTimeout); a pong handled in between clears nothing, and the
// timer armed after it closes a healthy device with "ping timeout"
// whenever the ping timeout is shorter than the ping interval, as in the
// defaults (20 s and 25 s). A transport hands the engine each pong that
// answers one of its pings once more, pongEcho later, when the timer is
// armed: the engine then clears it, and stays sure of the device. A pong
// echoed can never vouch for a ping the device has not answered: it comes
// well before the engine's next ping, which the first pong put off by the
// ping interval. The echo puts the next ping off by pongEcho, a third of
// the ping timeout (6.7 s under the defaults: the engine's goroutine would
// have to stall that long between the ping and its timer): clients allow
// a ping interval plus a ping timeout between pings.
type pongs struct {
	echo    atomic.Int64 // how long to wait, when a ping is out; 0: none
	pending atomic.Bool  // an echo is scheduled
}

// pinged notes a ping the engine sent.
func (g *pongs) pinged(gate *connectGate) {
	if gate == nil {
		return
	}
	g.echo.Store(max(int64(time.Millisecond), gate.pingTimeout.Load()/3))
}

// answered notes a pong the device sent: if it answers a ping, deliver
// hands it to the engine once more, pongEcho later.
func (g *pongs) answered(deliver func(*packet.Packet)) {
	d := g.echo.Swap(0)
	if d == 0 || !g.pending.CompareAndSwap(false, true) {
		return
	}
	time.AfterFunc(time.Duration(d), func() {
		g.pending.Store(false)
		deliver(&packet.Packet{Type: packet.PONG, Data: types.NewStringBuffer(nil)})
	})
}

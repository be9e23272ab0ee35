package server_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/p2prelay/p2prelay/internal/testkit"
	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server"
	"github.com/p2prelay/p2prelay/server/relaytest"
)

// The relay's protocol flows, in memory: fake connections, a fake clock,
// no sockets and no waiting. Each case drives devices by hand and checks,
// step by step, what every device was sent, what every ack was answered
// and what observers were told.

// rig is one relay with fake devices.
type rig struct {
	t     *testing.T
	r     *server.Relay
	clock *relaytest.Clock
	obs   *relaytest.Observer
	devs  map[string]*fakeDevice
	conns int
}

type fakeDevice struct {
	s    *server.Session
	conn *relaytest.Conn
	acks relaytest.Acks
	// asked holds the requests the relay sent with an ack, by event name,
	// for the device to answer.
	asked map[string][]relaytest.Sent
}

func newRig(t *testing.T, cfg server.Config) *rig {
	t.Helper()
	g := &rig{t: t, clock: relaytest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)), obs: &relaytest.Observer{}, devs: map[string]*fakeDevice{}}
	cfg.Clock, cfg.Observer = g.clock, g.obs
	r, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g.r = r
	return g
}

// done checks that the flow checked everything devices were sent and
// answered, then that no timer outlives the flow it belonged to: once
// every device has left, none is pending.
func (g *rig) done() {
	g.t.Helper()
	for id, d := range g.devs {
		if rest := d.conn.Events(); len(rest) > 0 {
			g.t.Errorf("%s was sent more than the test checked: %q", id, rest)
		}
		if rest := d.acks.Take(); len(rest) > 0 {
			g.t.Errorf("%s had acks answered that the test did not check: %q", id, rest)
		}
	}
	for _, d := range g.devs {
		g.r.Leave(d.s, "end of test")
	}
	if n := g.clock.Pending(); n != 0 {
		g.t.Errorf("%d timers left after every device left", n)
	}
}

// join connects a device; gen 1 or 2.
func (g *rig) join(id string, gen protocol.Generation) *fakeDevice {
	g.t.Helper()
	d, err := g.tryJoin(id, gen, "")
	if err != nil {
		g.t.Fatalf("join %s: %v", id, err)
	}
	return d
}

func (g *rig) tryJoin(id string, gen protocol.Generation, token string) (*fakeDevice, error) {
	g.conns++
	d := &fakeDevice{conn: &relaytest.Conn{}, asked: map[string][]relaytest.Sent{}}
	s, err := g.r.Join(server.ConnInfo{DeviceID: id, ConnID: fmt.Sprintf("conn%d", g.conns), Gen: gen, Address: "10.0.0.1:1", EngineIO: 4, Token: token}, d.conn)
	if err != nil {
		return nil, err
	}
	d.s = s
	g.devs[id] = d
	return d, nil
}

// send makes device id send event with vals; ack says whether it asks for
// an answer.
func (g *rig) send(id, event string, ack bool, vals ...any) {
	g.t.Helper()
	d := g.devs[id]
	var fn server.Ack
	if ack {
		fn = d.acks.Func()
	}
	g.r.Handle(d.s, event, protocol.NewArgs(vals...), fn)
}

// expect checks what device id was sent since the last check, written as
// eventText gives it.
func (g *rig) expect(id string, want ...string) {
	g.t.Helper()
	d := g.devs[id]
	var got []string
	for _, s := range d.conn.Take() {
		got = append(got, eventText(s))
		if s.WantsAck() {
			d.asked[s.Event] = append(d.asked[s.Event], s)
		}
	}
	if !reflect.DeepEqual(got, want) && (len(got) != 0 || len(want) != 0) {
		g.t.Fatalf("%s was sent %q, want %q", id, got, want)
	}
}

// answers checks the answers to device id's requests since the last check,
// written as ackText gives them.
func (g *rig) answers(id string, want ...string) {
	g.t.Helper()
	var got []string
	for _, a := range g.devs[id].acks.Take() {
		got = append(got, ackText(a))
	}
	if !reflect.DeepEqual(got, want) && (len(got) != 0 || len(want) != 0) {
		g.t.Fatalf("%s's acks were answered %q, want %q", id, got, want)
	}
}

// answer makes device id answer the oldest request event it was sent with
// an ack (checked with expect first).
func (g *rig) answer(id, event string, vals ...any) {
	g.t.Helper()
	d := g.devs[id]
	q := d.asked[event]
	if len(q) == 0 {
		g.t.Fatalf("%s has no %s to answer", id, event)
	}
	d.asked[event] = q[1:]
	q[0].Answer(vals...)
}

// events checks what observers were told since the last check.
func (g *rig) events(want ...string) {
	g.t.Helper()
	if got := g.obs.Take(); !reflect.DeepEqual(got, want) && (len(got) != 0 || len(want) != 0) {
		g.t.Fatalf("observer got %q, want %q", got, want)
	}
}

// leave ends device id's connection as an explicit disconnect does.
func (g *rig) leave(id string) {
	g.r.Leave(g.devs[id].s, "client namespace disconnect")
}

// drop ends device id's connection as a network drop does.
func (g *rig) drop(id string) {
	g.r.Leave(g.devs[id].s, "transport close")
}

// pair pairs two devices of generation 2, a asking, and forgets what that
// sent.
func (g *rig) pair(a, b string) {
	g.t.Helper()
	g.send(a, protocol.EventRegister, true, b)
	g.expect(b, `P2P_REGISTER "`+a+`" +ack`)
	g.answer(b, protocol.EventRegister, true)
	g.answers(a, "true")
	g.obs.Take()
}

// pairGen1 makes a ask the generation-1 device b, which says yes by event.
func (g *rig) pairGen1(a, b string) {
	g.t.Helper()
	g.send(a, protocol.EventRegister, true, b)
	g.expect(b, `P2P_REGISTER "`+a+`" +ack`)
	g.send(b, protocol.EventRegisterSuccess, false)
	g.answers(a, "true")
}

// eventText writes an event a device was sent: its name, its arguments
// as JSON, and +ack when the relay asked for an answer; SERVER_ERROR as
// its code only.
func eventText(s relaytest.Sent) string {
	if s.Event == protocol.EventServerError {
		text, _ := s.Args.First()
		str, _ := text.(string)
		return "SERVER_ERROR " + string(protocol.ParseServerError(str).Code)
	}
	parts := []string{s.Event}
	for _, v := range s.Args.Values() {
		b, _ := json.Marshal(v)
		parts = append(parts, string(b))
	}
	if s.WantsAck() {
		parts = append(parts, "+ack")
	}
	return strings.Join(parts, " ")
}

// ackText writes an ack's answer: its values as JSON, an error object as
// error:CODE.
func ackText(answer string) string {
	var vals []any
	if err := json.Unmarshal([]byte(answer), &vals); err != nil {
		return "undecodable " + answer
	}
	parts := []string{}
	for _, v := range vals {
		if e := protocol.ParseAckError([]any{v}); e != nil {
			parts = append(parts, "error:"+string(e.Code))
			continue
		}
		b, _ := json.Marshal(v)
		parts = append(parts, string(b))
	}
	return strings.Join(parts, " ")
}

func relayTo(target, event string, args ...any) map[string]any {
	return map[string]any{"targetClientId": target, "event": event, "args": args}
}

func TestFlows(t *testing.T) {
	const gen1, gen2 = protocol.Gen1, protocol.Gen2
	cases := []struct {
		name string
		cfg  server.Config
		run  func(g *rig)
	}{
		{"gen2 target accepts through its ack", server.Config{}, func(g *rig) {
			g.join("A", gen2)
			g.join("B", gen2)
			g.events("device_connected A", "device_connected B")
			g.send("A", protocol.EventRegister, true, "B")
			g.expect("B", `P2P_REGISTER "A" +ack`)
			g.events("pair_requested A B")
			g.answer("B", protocol.EventRegister, true)
			g.answers("A", "true")
			g.events("pair_created A B")
			// Asking its own peer again is answered true at once.
			g.send("B", protocol.EventRegister, true, "A")
			g.answers("B", "true")
		}},
		{"gen2 target refuses through its ack", server.Config{}, func(g *rig) {
			g.join("A", gen2)
			g.join("B", gen2)
			g.send("A", protocol.EventRegister, true, "B")
			g.expect("B", `P2P_REGISTER "A" +ack`)
			g.answer("B", protocol.EventRegister, false)
			g.answers("A", "false error:REFUSED")
			g.expect("A", "SERVER_ERROR REFUSED")
			g.events("device_connected A", "device_connected B", "pair_requested A B", "pair_refused A B REFUSED")
		}},
		{"gen1 target answers by event", server.Config{}, func(g *rig) {
			g.join("A", gen2)
			g.join("B", gen1)
			g.join("C", gen1)
			g.pairGen1("A", "B")
			g.send("C", protocol.EventRegister, true, "B")
			g.answers("C", "false error:BUSY")
			g.expect("C", "SERVER_ERROR BUSY")
			g.send("B", protocol.EventUnregister, true)
			g.expect("B", "P2P_DISCONNECT") // its own news, in generation-1 words
			g.expect("A", "P2P_UNREGISTER +ack")
			g.answers("B") // not before A has handled it
			g.answer("A", protocol.EventUnregister)
			g.answers("B", "true")
			g.send("C", protocol.EventRegister, true, "B")
			g.expect("B", `P2P_REGISTER "C" +ack`)
			g.send("B", protocol.EventRegisterFailed, true)
			g.answers("B", "")
			g.answers("C", "false error:REFUSED")
			g.expect("C", "SERVER_ERROR REFUSED")
		}},
		{"crossed requests pair at once", server.Config{}, func(g *rig) {
			g.join("A", gen2)
			g.join("B", gen2)
			g.send("A", protocol.EventRegister, true, "B")
			g.expect("B", `P2P_REGISTER "A" +ack`)
			g.send("B", protocol.EventRegister, true, "A")
			g.answers("A", "true")
			g.answers("B", "true")
			g.events("device_connected A", "device_connected B", "pair_requested A B", "pair_created A B")
			// B's late yes to A's question changes nothing and says nothing.
			g.answer("B", protocol.EventRegister, true)
			g.expect("B")
			g.events()
		}},
		{"a target that does not answer times out", server.Config{PairTimeout: 3 * time.Second}, func(g *rig) {
			g.join("A", gen2)
			g.join("B", gen1)
			g.send("A", protocol.EventRegister, true, "B")
			g.expect("B", `P2P_REGISTER "A" +ack`)
			g.clock.Advance(2999 * time.Millisecond)
			g.answers("A")
			g.clock.Advance(time.Millisecond)
			g.answers("A", "false error:TIMEOUT")
			g.expect("A", "SERVER_ERROR TIMEOUT")
			// A generation-1 yes after the timeout is told the pair did not form.
			g.send("B", protocol.EventRegisterSuccess, false)
			g.expect("B", "P2P_DISCONNECT")
			// Both are free again.
			g.send("B", protocol.EventRegister, true, "A")
			g.expect("A", `P2P_REGISTER "B" +ack`)
		}},
		{"a late yes tells no one who is paired meanwhile", server.Config{PairTimeout: time.Second}, func(g *rig) {
			g.join("A", gen2)
			g.join("B", gen2)
			g.join("C", gen2)
			g.send("A", protocol.EventRegister, true, "B")
			g.expect("B", `P2P_REGISTER "A" +ack`)
			q := g.devs["B"].asked[protocol.EventRegister][0]
			g.devs["B"].asked[protocol.EventRegister] = nil
			g.clock.Advance(time.Second)
			g.answers("A", "false error:TIMEOUT")
			g.expect("A", "SERVER_ERROR TIMEOUT")
			g.pair("C", "B")
			q.Answer(true) // B's yes to A, late: B is C's peer now
			g.expect("B")
			g.expect("A")
			if p, _ := g.r.Store().Peer("B"); p != "C" {
				t.Errorf("B's peer %q", p)
			}
		}},
		{"pairing refused at once, with codes", server.Config{}, func(g *rig) {
			g.join("A", gen2)
			g.join("B", gen2)
			g.join("C", gen2)
			g.pair("B", "C")
			for _, c := range []struct {
				target any
				code   string
			}{{"A", "SELF"}, {"Z", "OFFLINE"}, {"B", "BUSY"}, {42, "BAD_REQUEST"}, {"bad\x01id", "BAD_ID"}} {
				g.send("A", protocol.EventRegister, true, c.target)
				g.answers("A", "false error:"+c.code)
				g.expect("A", "SERVER_ERROR "+c.code)
			}
			g.send("A", protocol.EventRegister, false, "B")
			g.expect("A", "SERVER_ERROR BAD_REQUEST")
			g.send("A", protocol.EventRegister, true)
			g.answers("A", "false error:BAD_REQUEST")
			g.expect("A", "SERVER_ERROR BAD_REQUEST")
		}},
		{"pairing requests are rate limited", server.Config{PairRate: 1, PairBurst: 2}, func(g *rig) {
			g.join("A", gen2)
			for range 2 {
				g.send("A", protocol.EventRegister, true, "Z")
				g.answers("A", "false error:OFFLINE")
				g.expect("A", "SERVER_ERROR OFFLINE")
			}
			g.send("A", protocol.EventRegister, true, "Z")
			g.answers("A", "false error:RATE_LIMITED")
			g.expect("A", "SERVER_ERROR RATE_LIMITED")
			g.clock.Advance(time.Second)
			g.send("A", protocol.EventRegister, true, "Z")
			g.answers("A", "false error:OFFLINE")
			g.expect("A", "SERVER_ERROR OFFLINE")
		}},
		{"relay without and with ack", server.Config{}, func(g *rig) {
			g.join("A", gen2)
			g.join("B", gen2)
			g.pair("A", "B")
			g.send("A", protocol.EventEmit, false, relayTo("B", "hello", "x", 1.0, map[string]any{"k": []any{true}}))
			g.expect("B", `hello "x" 1 {"k":[true]}`)
			g.send("A", protocol.EventEmit, true, map[string]any{"targetDeviceId": "B", "event": "noargs"})
			g.expect("B", "noargs")
			g.answers("A", "")
			g.send("B", protocol.EventEmitAck, true, relayTo("A", "q", 7.0))
			g.expect("A", "q 7 +ack")
			g.answer("A", "q", "one", 2.0, nil)
			g.answers("B", `"one" 2 null`)
			if st := g.r.Stats(); st.Messages != 3 || st.Acks != 1 {
				t.Errorf("stats %+v, want 3 messages and 1 ack", st)
			}
		}},
		{"relay refusals, with codes", server.Config{MaxPayload: 64}, func(g *rig) {
			g.join("A", gen2)
			g.join("B", gen2)
			g.join("C", gen2)
			g.pair("A", "B")
			for _, c := range []struct {
				payload any
				code    string
			}{
				{relayTo("C", "x"), "NOT_PAIRED"},
				{relayTo("B", "P2P_REGISTER"), "RESERVED_EVENT"},
				{relayTo("B", "disconnect"), "RESERVED_EVENT"},
				{relayTo("B", "x", strings.Repeat("y", 100)), "TOO_LARGE"},
				{map[string]any{"targetClientId": "B", "event": "x", "args": "no"}, "BAD_REQUEST"},
				{map[string]any{"event": "x"}, "BAD_REQUEST"},
				{"not an object", "BAD_REQUEST"},
			} {
				g.send("A", protocol.EventEmitAck, true, c.payload)
				g.answers("A", "error:"+c.code)
				g.expect("A", "SERVER_ERROR "+c.code)
			}
			g.send("A", protocol.EventEmitAck, false, relayTo("B", "x"))
			g.expect("A", "SERVER_ERROR BAD_REQUEST")
			g.send("A", "NOPE", true)
			g.answers("A", "error:UNKNOWN_EVENT")
			g.expect("A", "SERVER_ERROR UNKNOWN_EVENT")
			g.expect("B")
			// An answer over the limit fails the ack rather than pass.
			g.send("A", protocol.EventEmitAck, true, relayTo("B", "q"))
			g.expect("B", "q +ack")
			g.answer("B", "q", strings.Repeat("z", 100))
			g.answers("A", "error:TOO_LARGE")
			g.expect("A", "SERVER_ERROR TOO_LARGE")
		}},
		{"an unanswered ack times out, a late answer is dropped", server.Config{AckTimeout: 5 * time.Second}, func(g *rig) {
			g.join("A", gen2)
			g.join("B", gen2)
			g.pair("A", "B")
			g.send("A", protocol.EventEmitAck, true, relayTo("B", "q"))
			g.expect("B", "q +ack")
			g.clock.Advance(5 * time.Second)
			g.answers("A", "error:TIMEOUT")
			g.expect("A", "SERVER_ERROR TIMEOUT")
			g.answer("B", "q", "late")
			g.answers("A")
		}},
		{"pending acks per target are bounded", server.Config{MaxPendingAcks: 2}, func(g *rig) {
			g.join("A", gen2)
			g.join("B", gen2)
			g.pair("A", "B")
			for range 3 {
				g.send("A", protocol.EventEmitAck, true, relayTo("B", "q"))
			}
			g.expect("B", "q +ack", "q +ack")
			g.answers("A", "error:RATE_LIMITED")
			g.expect("A", "SERVER_ERROR RATE_LIMITED")
			g.answer("B", "q", 1.0)
			g.answers("A", "1")
			g.send("A", protocol.EventEmitAck, true, relayTo("B", "q"))
			g.expect("B", "q +ack")
		}},
		{"unregister tells the peer in its generation's words", server.Config{}, func(g *rig) {
			g.join("A", gen2)
			g.join("B", gen2)
			g.join("C", gen1)
			g.pair("A", "B")
			g.send("A", protocol.EventUnregister, true)
			g.expect("A", "P2P_UNREGISTER +ack") // both sides are told
			g.expect("B", "P2P_UNREGISTER +ack")
			g.events("pair_ended A B (unregister)")
			g.answer("A", protocol.EventUnregister) // its own answer does not count
			g.answers("A")
			g.answer("B", protocol.EventUnregister)
			g.answers("A", "true")
			g.send("A", protocol.EventUnregister, true)
			g.answers("A", "false error:NOT_PAIRED")
			g.expect("A", "SERVER_ERROR NOT_PAIRED")
			g.pairGen1("A", "C")
			g.send("A", protocol.EventUnregister, true)
			g.expect("A", "P2P_UNREGISTER +ack")
			g.answers("A", "true") // a generation-1 peer cannot answer: at once
			g.expect("C", "P2P_DISCONNECT")
		}},
		{"an unregister waits for a silent peer only so long", server.Config{PairTimeout: time.Second}, func(g *rig) {
			g.join("A", gen2)
			g.join("B", gen2)
			g.pair("A", "B")
			g.send("A", protocol.EventUnregister, false) // no ack: both still told
			g.expect("A", "P2P_UNREGISTER +ack")
			g.expect("B", "P2P_UNREGISTER +ack")
			g.pair("A", "B")
			g.send("A", protocol.EventUnregister, true)
			g.expect("A", "P2P_UNREGISTER +ack")
			g.expect("B", "P2P_UNREGISTER +ack")
			g.clock.Advance(999 * time.Millisecond)
			g.answers("A")
			g.clock.Advance(time.Millisecond) // the pairing timeout, shorter than 2 s
			g.answers("A", "true")
			g.answer("B", protocol.EventUnregister) // late: nothing more
			g.answers("A")
			// A peer that leaves instead of answering frees the requester too.
			g.pair("A", "B")
			g.send("B", protocol.EventUnregister, true)
			g.expect("B", "P2P_UNREGISTER +ack")
			g.expect("A", "P2P_UNREGISTER +ack")
			g.leave("A")
			g.answers("B", "true")
		}},
		{"streams: asked, answered, relayed with back-pressure", server.Config{AckTimeout: time.Second}, func(g *rig) {
			g.join("A", gen2)
			g.join("B", gen2)
			g.join("C", gen1)
			g.send("A", protocol.EventRegisterStream, true, "B")
			g.answers("A", "false error:NOT_PAIRED")
			g.expect("A", "SERVER_ERROR NOT_PAIRED")
			g.pair("A", "B")
			g.send("A", protocol.EventRegisterStream, true, "C")
			g.answers("A", "false error:NOT_PAIRED")
			g.expect("A", "SERVER_ERROR NOT_PAIRED")
			g.send("A", protocol.EventRegisterStream, false, "B")
			g.expect("A", "SERVER_ERROR BAD_REQUEST")
			g.send("A", protocol.EventRegisterStream, true, "B")
			g.expect("B", "P2P_REGISTER_STREAM +ack") // the ack alone
			g.answer("B", protocol.EventRegisterStream, false)
			g.answers("A", "false error:REFUSED")
			g.expect("A", "SERVER_ERROR REFUSED")
			g.send("A", protocol.EventRegisterStream, true, "B")
			g.expect("B", "P2P_REGISTER_STREAM +ack")
			g.answer("B", protocol.EventRegisterStream, true)
			g.answers("A", "true")
			// A chunk waits for its reader as long as it takes: no ack timeout.
			g.send("A", protocol.EventEmitAck, true, relayTo("B", protocol.EventEmitStream, "chunk"))
			g.expect("B", `P2P_EMIT_STREAM "chunk" +ack`)
			g.clock.Advance(time.Hour)
			g.answers("A")
			g.answer("B", protocol.EventEmitStream)
			g.answers("A", "")
			// Never without an ack; and a chunk still waiting when the pair
			// ends fails NOT_PAIRED.
			g.send("A", protocol.EventEmit, false, relayTo("B", protocol.EventEmitStream, "x"))
			g.expect("A", "SERVER_ERROR RESERVED_EVENT")
			g.send("A", protocol.EventEmitAck, true, relayTo("B", protocol.EventEmitStream, "y"))
			g.expect("B", `P2P_EMIT_STREAM "y" +ack`)
			g.send("B", protocol.EventUnregister, true)
			g.expect("B", "P2P_UNREGISTER +ack")
			g.expect("A", "P2P_UNREGISTER +ack", "SERVER_ERROR NOT_PAIRED")
			g.answers("A", "error:NOT_PAIRED")
			g.answer("A", protocol.EventUnregister)
			g.answers("B", "true")
			// A generation-1 peer has no streams; a silent one times out.
			g.pairGen1("A", "C")
			g.send("A", protocol.EventRegisterStream, true, "C")
			g.answers("A", "false error:REFUSED")
			g.expect("A", "SERVER_ERROR REFUSED")
		}},
		{"a stream request the peer never answers times out", server.Config{PairTimeout: 2 * time.Second}, func(g *rig) {
			g.join("A", gen2)
			g.join("B", gen2)
			g.pair("A", "B")
			g.send("A", protocol.EventRegisterStream, true, "B")
			g.expect("B", "P2P_REGISTER_STREAM +ack")
			g.clock.Advance(2 * time.Second)
			g.answers("A", "false error:TIMEOUT")
			g.expect("A", "SERVER_ERROR TIMEOUT")
			g.answer("B", protocol.EventRegisterStream, true)
			g.answers("A")
		}},
		{"an operator watches a device and reads its detail", server.Config{}, func(g *rig) {
			g.join("A", gen2)
			g.join("B", gen2)
			g.pair("A", "B")
			var seen []string
			stop, err := g.r.Watch("B", 3, func(tr server.Traffic) {
				seen = append(seen, fmt.Sprintf("%s %s %s %d ack=%v rtt=%s %s", tr.ID, tr.Dir, tr.Event, tr.Size, tr.Ack, tr.RTT, tr.Code))
			})
			if err != nil {
				t.Fatal(err)
			}
			g.send("A", protocol.EventEmitAck, true, relayTo("B", "q", "abc"))
			g.expect("B", `q "abc" +ack`)
			g.clock.Advance(40 * time.Millisecond)
			g.answer("B", "q", 1.0)
			g.answers("A", "1")
			g.send("B", protocol.EventEmit, true, relayTo("Z", "nope"))
			g.answers("B", "error:NOT_PAIRED")
			g.expect("B", "SERVER_ERROR NOT_PAIRED")
			g.send("A", protocol.EventEmit, false, relayTo("B", "over the rate"))
			g.expect("B", "over the rate")
			want := []string{
				"B out q 8 ack=false rtt=0s ",
				"B in q 4 ack=true rtt=40ms ",
				"B in  0 ack=false rtt=0s NOT_PAIRED",
			}
			if !reflect.DeepEqual(seen, want) {
				t.Errorf("traffic %q, want %q", seen, want)
			}
			d, ok := g.r.Detail("B")
			if !ok || d.MessagesOut != 2 || d.MessagesIn != 0 || d.BytesOut == 0 || d.Refusals[protocol.CodeNotPaired] != 1 || !d.Watched || d.Dropped != 1 || d.Peer != "A" {
				t.Errorf("detail %+v", d)
			}
			stop()
			g.send("A", protocol.EventEmitAck, true, relayTo("B", "q2"))
			g.expect("B", "q2 +ack")
			if d, _ := g.r.Detail("A"); d.AcksAwaited != 1 || d.MessagesIn != 3 {
				t.Errorf("A's detail %+v", d)
			}
			if d, _ := g.r.Detail("B"); d.AcksOwed != 1 || d.Watched || len(seen) != 3 {
				t.Errorf("B's detail %+v after the watch stopped, %d seen", d, len(seen))
			}
			g.answer("B", "q2")
			g.answers("A", "")
			if _, err := g.r.Watch("Z", 0, func(server.Traffic) {}); protocol.CodeOf(err) != protocol.CodeOffline {
				t.Errorf("watch of nobody: %v", err)
			}
		}},
		{"a disconnect tells the peer", server.Config{}, func(g *rig) {
			g.join("A", gen2)
			g.join("B", gen1)
			g.pairGen1("A", "B")
			g.obs.Take()
			g.leave("B")
			g.expect("A", "P2P_DISCONNECT")
			g.events("pair_ended A B (disconnect)", "device_disconnected B (client namespace disconnect)")
			if _, ok := g.r.Store().Get("B"); ok {
				t.Errorf("B still in the store")
			}
			g.leave("B") // twice is harmless
			g.events()
		}},
		{"the target drops mid-handshake", server.Config{}, func(g *rig) {
			g.join("A", gen2)
			g.join("B", gen2)
			g.send("A", protocol.EventRegister, true, "B")
			g.expect("B", `P2P_REGISTER "A" +ack`)
			g.leave("B")
			g.answers("A", "false error:OFFLINE")
			g.expect("A", "SERVER_ERROR OFFLINE")
			g.events("device_connected A", "device_connected B", "pair_requested A B", "pair_refused A B OFFLINE", "device_disconnected B (client namespace disconnect)")
			g.answer("B", protocol.EventRegister, true) // from beyond: nothing
			g.answers("A")
		}},
		{"the source drops mid-handshake", server.Config{}, func(g *rig) {
			g.join("A", gen2)
			g.join("B", gen2)
			g.send("A", protocol.EventRegister, true, "B")
			g.expect("B", `P2P_REGISTER "A" +ack`)
			g.leave("A")
			g.answers("A")
			// B's yes comes too late: it learns the pair did not form.
			g.answer("B", protocol.EventRegister, true)
			g.expect("B", "P2P_DISCONNECT")
			if d, _ := g.r.Store().Get("B"); !d.Available() {
				t.Errorf("B not free: %+v", d)
			}
		}},
		{"the target drops mid-ack", server.Config{}, func(g *rig) {
			g.join("A", gen2)
			g.join("B", gen2)
			g.pair("A", "B")
			g.send("A", protocol.EventEmitAck, true, relayTo("B", "q"))
			g.send("A", protocol.EventEmitAck, true, relayTo("B", "q"))
			g.expect("B", "q +ack", "q +ack")
			g.leave("B")
			g.answers("A", "error:OFFLINE", "error:OFFLINE")
			g.expect("A", "SERVER_ERROR OFFLINE", "SERVER_ERROR OFFLINE", "P2P_DISCONNECT")
		}},
		{"an operator kicks and breaks pairs", server.Config{}, func(g *rig) {
			g.join("A", gen2)
			g.join("B", gen2)
			g.join("C", gen1)
			g.join("D", gen2)
			g.pair("A", "B")
			g.pair("C", "D")
			if _, err := g.r.Unpair("A"); err != nil {
				t.Fatal(err)
			}
			g.expect("A", "P2P_UNREGISTER +ack")
			g.expect("B", "P2P_UNREGISTER +ack")
			if _, err := g.r.Unpair("A"); protocol.CodeOf(err) != protocol.CodeNotPaired {
				t.Errorf("second Unpair: %v", err)
			}
			if err := g.r.Kick("D"); err != nil {
				t.Fatal(err)
			}
			g.expect("D", "SERVER_ERROR KICKED")
			g.expect("C", "P2P_DISCONNECT")
			if g.devs["D"].conn.Disconnected() != 1 {
				t.Errorf("kicked D not disconnected")
			}
			if err := g.r.Kick("D"); protocol.CodeOf(err) != protocol.CodeOffline {
				t.Errorf("second Kick: %v", err)
			}
			g.events("pair_ended A B (broken)", "pair_ended C D (kicked)", "device_disconnected D (kicked)")
		}},
		{"a paired device that drops is kept away and resumes its pair", server.Config{}, func(g *rig) {
			g.join("A", gen2)
			g.join("B", gen1)
			g.pairGen1("A", "B")
			g.obs.Take()
			g.send("A", protocol.EventEmitAck, true, relayTo("B", "q", 1.0))
			g.expect("B", "q 1 +ack")
			g.drop("B")
			// The ack that went out on the dropped connection cannot be
			// answered on another: it fails at once. The peer hears nothing.
			g.answers("A", "error:OFFLINE")
			g.expect("A", "SERVER_ERROR OFFLINE")
			g.events("device_away B A (transport close)")
			if d, _ := g.r.Store().Get("B"); !d.Away || d.Peer != "A" {
				t.Fatalf("B while away: %+v", d)
			}
			// Meanwhile: held, in order, the ack with its own timeout.
			g.send("A", protocol.EventEmit, false, relayTo("B", "one"))
			g.send("A", protocol.EventEmitAck, true, relayTo("B", "two"))
			g.send("A", protocol.EventEmit, false, relayTo("B", "three"))
			g.clock.Advance(4 * time.Second)
			old := g.devs["B"]
			g.join("B", gen1)
			g.events("device_resumed B A")
			g.expect("B", "one", "two +ack", "three")
			g.answer("B", "two", "yes")
			g.answers("A", `"yes"`)
			g.send("B", protocol.EventEmit, false, relayTo("A", "back"))
			g.expect("A", "back")
			g.expect("A")
			if got := old.conn.Events(); len(got) != 0 {
				t.Errorf("the dropped connection was sent %q", got)
			}
			// The window's timer is gone: nothing happens when it would end.
			g.clock.Advance(10 * time.Second)
			g.events()
		}},
		{"a device that does not come back within its window leaves", server.Config{ResumeWindow: 3 * time.Second, AckTimeout: time.Minute}, func(g *rig) {
			g.join("A", gen2)
			g.join("B", gen2)
			g.pair("A", "B")
			g.drop("B")
			g.events("device_away B A (transport close)")
			g.send("A", protocol.EventEmitAck, true, relayTo("B", "held"))
			g.clock.Advance(3 * time.Second)
			g.answers("A", "error:OFFLINE")
			g.expect("A", "SERVER_ERROR OFFLINE", "P2P_DISCONNECT")
			g.events("pair_ended A B (away)", "device_disconnected B (did not come back)")
			g.join("B", gen2) // a fresh start
			g.events("device_connected B")
			g.expect("B")
		}},
		{"an unpaired device that drops leaves at once", server.Config{}, func(g *rig) {
			g.join("A", gen2)
			g.drop("A")
			g.events("device_connected A", "device_disconnected A (transport close)")
		}},
		{"P2P_LEAVE frees the id and tells the peer before it is answered", server.Config{}, func(g *rig) {
			g.join("A", gen2)
			g.join("B", gen2)
			g.pair("A", "B")
			g.send("B", protocol.EventLeave, true)
			g.expect("A", "P2P_DISCONNECT")
			g.answers("B", "true")
			if g.devs["B"].conn.Disconnected() != 1 {
				t.Errorf("B not disconnected after leaving")
			}
			g.drop("B") // its connection closing afterwards changes nothing
			g.events("pair_ended A B (disconnect)", "device_disconnected B (left)")
			g.join("B", gen2)
			g.events("device_connected B")
		}},
		{"resume is off with a negative window", server.Config{ResumeWindow: -1}, func(g *rig) {
			g.join("A", gen2)
			g.join("B", gen2)
			g.pair("A", "B")
			g.drop("B")
			g.expect("A", "P2P_DISCONNECT")
		}},
		{"what is held for an away device is bounded", server.Config{ResumeHold: 2}, func(g *rig) {
			g.join("A", gen2)
			g.join("B", gen2)
			g.pair("A", "B")
			g.drop("B")
			for range 3 {
				g.send("A", protocol.EventEmitAck, true, relayTo("B", "m"))
			}
			g.answers("A", "error:OFFLINE")
			g.expect("A", "SERVER_ERROR OFFLINE")
			g.join("B", gen2)
			g.expect("B", "m +ack", "m +ack")
			g.answer("B", "m", 1.0)
			g.answer("B", "m", 2.0)
			g.answers("A", "1", "2")
		}},
		{"unpairing while one side is away ends it", server.Config{}, func(g *rig) {
			g.join("A", gen2)
			g.join("B", gen2)
			g.pair("A", "B")
			g.drop("B")
			g.obs.Take()
			g.send("A", protocol.EventUnregister, true)
			g.expect("A", "P2P_UNREGISTER +ack")
			g.answers("A", "true")
			g.events("pair_ended A B (unregister)", "device_disconnected B (unpaired while away)")
			g.join("B", gen2)
			g.events("device_connected B")
		}},
		{"a claim on a held id checks the holder: a dead one gives way", server.Config{}, func(g *rig) {
			g.join("A", gen2)
			g.join("B", gen2)
			g.pair("A", "B")
			g.devs["B"].conn.SetDead()
			old := g.devs["B"]
			g.join("B", gen2) // the same device, from a new process
			if old.conn.Closed() != 1 {
				t.Errorf("the dead holder's transport was not closed")
			}
			g.events("device_away B A (unresponsive)", "device_resumed B A")
			g.send("A", protocol.EventEmit, false, relayTo("B", "hi"))
			g.expect("B", "hi")
			g.expect("A")
		}},
		{"a claim on a held id checks the holder: a live one keeps it", server.Config{ReclaimCheck: time.Second}, func(g *rig) {
			g.join("A", gen2)
			holder := g.devs["A"]
			for range 3 {
				if _, err := g.tryJoin("A", gen2, ""); protocol.CodeOf(err) != protocol.CodeIDInUse {
					t.Fatalf("claim on a live id: %v", err)
				}
			}
			g.devs["A"] = holder
			if holder.conn.Closed() != 0 || holder.conn.Disconnected() != 0 {
				t.Errorf("the live holder was closed")
			}
			// Within the check period the holder is not asked again, even
			// if it stopped answering meanwhile.
			holder.conn.SetDead()
			if _, err := g.tryJoin("A", gen2, ""); protocol.CodeOf(err) != protocol.CodeIDInUse {
				t.Fatalf("claim within the period: %v", err)
			}
			g.devs["A"] = holder
			g.clock.Advance(time.Second)
			if _, err := g.tryJoin("A", gen2, ""); err != nil {
				t.Fatalf("claim after the period on a dead holder: %v", err)
			}
			g.events("device_connected A", "device_disconnected A (unresponsive)", "device_connected A")
		}},
		{"an id in use is refused", server.Config{ReclaimCheck: -1}, func(g *rig) {
			g.join("A", gen2)
			if _, err := g.tryJoin("A", gen1, ""); protocol.CodeOf(err) != protocol.CodeIDInUse {
				t.Fatalf("second A: %v, want ID_IN_USE", err)
			}
			if st := g.r.Stats(); st.Refusals[protocol.CodeIDInUse] != 1 || st.Devices != 1 {
				t.Errorf("stats %+v", st)
			}
			g.events("device_connected A")
		}},
		{"an id in use is taken over by policy", server.Config{DuplicateID: server.DuplicateTakeover}, func(g *rig) {
			old := g.join("A", gen2)
			g.join("B", gen2)
			g.pair("A", "B")
			g.join("A", gen2) // the takeover
			g.expect("B", "P2P_DISCONNECT")
			if got := eventTexts(old.conn.Take()); !reflect.DeepEqual(got, []string{"SERVER_ERROR TAKEN_OVER"}) || old.conn.Disconnected() != 1 {
				t.Errorf("old connection was sent %q, disconnected %d times", got, old.conn.Disconnected())
			}
			g.events("pair_ended A B (takeover)", "device_disconnected A (taken over)", "device_connected A")
			// The old connection's late leave changes nothing.
			g.r.Leave(old.s, "transport close")
			if _, ok := g.r.Store().Get("A"); !ok {
				t.Errorf("the old connection's leave removed the new A")
			}
		}},
		{"listings", server.Config{}, func(g *rig) {
			g.join("B", gen2)
			g.join("A", gen2)
			g.join("C", gen1)
			g.pair("A", "B")
			g.send("C", protocol.EventListClients, true)
			g.answers("C", `["A","B","C"]`)
			g.send("C", protocol.EventListDevices, true, map[string]any{"available": true})
			g.answers("C", `[{"available":true,"id":"C"}]`)
			g.send("C", protocol.EventListDevices, true, nil)
			g.answers("C", `[{"available":false,"id":"A"},{"available":false,"id":"B"},{"available":true,"id":"C"}]`)
			g.send("A", protocol.EventStatus, true)
			g.answers("A", `{"id":"A","peer":"B"}`)
			g.send("C", protocol.EventStatus, true)
			g.answers("C", `{"id":"C","peer":null}`)
			g.send("C", protocol.EventListDevices, true, map[string]any{"available": "yes"})
			g.answers("C", "error:BAD_REQUEST")
			g.expect("C", "SERVER_ERROR BAD_REQUEST")
		}},
		{"requests are rate limited", server.Config{Rate: 1, Burst: 2}, func(g *rig) {
			g.join("A", gen2)
			g.join("B", gen2)
			g.send("A", protocol.EventListClients, true)
			g.send("A", protocol.EventListClients, true)
			g.answers("A", `["A","B"]`, `["A","B"]`)
			g.send("A", protocol.EventListClients, true)
			g.answers("A", "error:RATE_LIMITED")
			g.expect("A", "SERVER_ERROR RATE_LIMITED")
			g.clock.Advance(time.Second)
			g.send("A", protocol.EventListClients, true)
			g.answers("A", `["A","B"]`)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := newRig(t, c.cfg)
			c.run(g)
			g.done()
		})
	}
}

func eventTexts(sent []relaytest.Sent) []string {
	var out []string
	for _, s := range sent {
		out = append(out, eventText(s))
	}
	return out
}

func TestRefusalsAreLoggedSampled(t *testing.T) {
	var logs testkit.SyncBuffer
	g := newRig(t, server.Config{Rate: server.Unlimited, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	g.join("A", protocol.Gen2)
	for range 50 {
		g.send("A", "NOPE", false)
	}
	g.clock.Advance(time.Second)
	g.send("A", "NOPE", false)
	lines := strings.Count(logs.String(), `msg="request refused"`)
	if lines != 6 || !strings.Contains(logs.String(), "unlogged_since=45") {
		t.Fatalf("%d refusal lines for 51 refusals:\n%s", lines, logs.String())
	}
	if st := g.r.Stats(); st.Refusals[protocol.CodeUnknownEvent] != 51 {
		t.Fatalf("counted %d refusals", st.Refusals[protocol.CodeUnknownEvent])
	}
	g.devs["A"].conn.Take()
	g.done()
}

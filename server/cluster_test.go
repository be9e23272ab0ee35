package server_test

import (
	"testing"
	"time"

	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server"
)

// The relay's flows across nodes: two relays sharing one store, their
// envelopes on an in-process bus, devices on either.
func TestClusterFlows(t *testing.T) {
	const gen1, gen2 = protocol.Gen1, protocol.Gen2
	cases := []struct {
		name string
		cfg  server.Config
		run  func(g *rig)
	}{
		{"pairing across nodes, both generations", server.Config{}, func(g *rig) {
			g.joinOn("n1", "A", gen2)
			g.joinOn("n2", "B", gen2)
			g.joinOn("n2", "C", gen1)
			g.send("A", protocol.EventRegister, true, "B")
			g.expect("B", `P2P_REGISTER "A" +ack`)
			g.answer("B", protocol.EventRegister, false)
			g.answers("A", "false error:REFUSED")
			g.expect("A", "SERVER_ERROR REFUSED")
			g.send("A", protocol.EventRegister, true, "B")
			g.expect("B", `P2P_REGISTER "A" +ack`)
			g.answer("B", protocol.EventRegister, true)
			g.answers("A", "true")
			if p, _ := g.r.Store().Peer("B"); p != "A" {
				t.Fatalf("B's peer %q", p)
			}
			g.send("B", protocol.EventStatus, true)
			g.answers("B", `{"id":"B","peer":"A"}`)
			// Generation 1 answers by event, on its own node.
			g.send("B", protocol.EventUnregister, true)
			g.expect("B", "P2P_UNREGISTER +ack")
			g.expect("A", "P2P_UNREGISTER +ack")
			g.answer("A", protocol.EventUnregister)
			g.answers("B", "true")
			g.send("A", protocol.EventRegister, true, "C")
			g.expect("C", `P2P_REGISTER "A" +ack`)
			g.send("C", protocol.EventRegisterSuccess, false)
			g.answers("A", "true")
		}},
		{"requests crossed across nodes pair at once", server.Config{}, func(g *rig) {
			g.joinOn("n1", "A", gen2)
			g.joinOn("n2", "B", gen2)
			g.send("A", protocol.EventRegister, true, "B")
			g.send("B", protocol.EventRegister, true, "A")
			g.answers("A", "true")
			g.answers("B", "true")
			g.expect("B", `P2P_REGISTER "A" +ack`)
			g.answer("B", protocol.EventRegister, true) // late, and paired: nothing
			g.expect("B")
			g.expect("A")
			g.send("A", protocol.EventEmit, false, relayTo("B", "hi"))
			g.expect("B", "hi")
		}},
		{"a side that hears of its pair before its node does relays at once", server.Config{}, func(g *rig) {
			g.joinOn("n1", "A", gen2)
			g.joinOn("n2", "B", gen2)
			g.joinOn("n1", "C", gen2)
			g.joinOn("n2", "D", gen2)
			// The links a node sends to the other are late: the sides that
			// heard of the pair (an answer, a crossed request) send first.
			g.bus.Hold(func(_ string, e server.Envelope) bool { return e.Kind == server.EnvLink })
			g.send("A", protocol.EventRegister, true, "B")
			g.expect("B", `P2P_REGISTER "A" +ack`)
			g.answer("B", protocol.EventRegister, true)
			g.answers("A", "true")
			g.send("B", protocol.EventEmit, false, relayTo("A", "from-b"))
			g.expect("A", "from-b")
			g.send("C", protocol.EventRegister, true, "D")
			g.send("D", protocol.EventRegister, true, "C")
			g.answers("C", "true")
			g.answers("D", "true")
			g.expect("D", `P2P_REGISTER "C" +ack`)
			g.send("C", protocol.EventEmit, false, relayTo("D", "from-c"))
			g.expect("D", "from-c")
			g.send("D", protocol.EventEmitAck, true, relayTo("C", "q"))
			g.expect("C", "q +ack")
			g.answer("C", "q", "ok")
			g.answers("D", `"ok"`)
			g.bus.Release()
			g.flush()
			g.send("A", protocol.EventEmit, false, relayTo("B", "later"))
			g.expect("B", "later")
			// A device paired with no one is still refused.
			g.send("A", protocol.EventEmit, false, relayTo("D", "x"))
			g.expect("A", "SERVER_ERROR NOT_PAIRED")
		}},
		{"relaying across nodes, with and without ack, in order", server.Config{}, func(g *rig) {
			g.joinOn("n1", "A", gen2)
			g.joinOn("n2", "B", gen2)
			g.pair("A", "B")
			for _, ev := range []string{"e1", "e2", "e3"} {
				g.send("A", protocol.EventEmit, false, relayTo("B", ev, ev))
			}
			g.expect("B", `e1 "e1"`, `e2 "e2"`, `e3 "e3"`)
			g.send("B", protocol.EventEmitAck, true, relayTo("A", "q", 1.0))
			g.expect("A", "q 1 +ack")
			g.answer("A", "q", "x", 2.0, nil)
			g.answers("B", `"x" 2 null`)
			g.send("B", protocol.EventEmitAck, true, relayTo("C", "q"))
			g.answers("B", "error:NOT_PAIRED")
			g.expect("B", "SERVER_ERROR NOT_PAIRED")
			// The asking node times an unanswered ack out.
			g.send("A", protocol.EventEmitAck, true, relayTo("B", "slow"))
			g.expect("B", "slow +ack")
			g.advance(server.DefaultAckTimeout)
			g.answers("A", "error:TIMEOUT")
			g.expect("A", "SERVER_ERROR TIMEOUT")
		}},
		{"a disconnect across nodes tells the peer; a drop keeps the pair", server.Config{}, func(g *rig) {
			g.joinOn("n1", "A", gen2)
			g.joinOn("n2", "B", gen1)
			g.pairGen1("A", "B")
			g.send("A", protocol.EventEmitAck, true, relayTo("B", "q"))
			g.expect("B", "q +ack")
			g.leave("B")
			g.answers("A", "error:OFFLINE")
			g.expect("A", "SERVER_ERROR OFFLINE", "P2P_DISCONNECT")
			g.send("A", protocol.EventEmit, false, relayTo("B", "x"))
			g.expect("A", "SERVER_ERROR NOT_PAIRED")
		}},
		{"a dropped device that comes back on another node gets what was held, in order", server.Config{}, func(g *rig) {
			g.joinOn("n1", "A", gen2)
			g.joinOn("n2", "B", gen2)
			g.pair("A", "B")
			g.drop("B")
			g.send("A", protocol.EventEmit, false, relayTo("B", "m1"))
			g.send("A", protocol.EventEmitAck, true, relayTo("B", "q"))
			g.joinOn("n1", "B", gen2) // back, on A's node
			g.expect("B", "m1", "q +ack")
			g.answer("B", "q", "late but here")
			g.answers("A", `"late but here"`)
			g.send("A", protocol.EventEmit, false, relayTo("B", "m2"))
			g.expect("B", "m2")
			g.send("B", protocol.EventEmit, false, relayTo("A", "back"))
			g.expect("A", "back")
			if d, _ := g.r.Store().Get("B"); d.Node != "n1" || d.Away {
				t.Fatalf("B's record %+v", d)
			}
		}},
		{"a claim on another node checks the holder there", server.Config{}, func(g *rig) {
			g.joinOn("n1", "A", gen2)
			g.joinOn("n1", "B", gen2)
			g.pair("A", "B")
			holder := g.devs["B"]
			if _, err := g.tryJoinOn("n2", "B", gen2, ""); protocol.CodeOf(err) != protocol.CodeIDInUse {
				t.Fatalf("claim on a live holder: %v", err)
			}
			g.devs["B"] = holder
			holder.conn.SetDead()
			g.advance(server.DefaultReclaimCheck)
			g.joinOn("n2", "B", gen2)
			if holder.conn.Closed() != 1 {
				t.Errorf("the dead holder was not closed")
			}
			g.send("A", protocol.EventEmit, false, relayTo("B", "moved"))
			g.expect("B", "moved")
			g.expect("A")
		}},
		{"kick and operator unpair work from any node", server.Config{}, func(g *rig) {
			g.joinOn("n1", "A", gen2)
			g.joinOn("n2", "B", gen2)
			g.pair("A", "B")
			if _, err := g.relays["n1"].Unpair("B"); err != nil {
				t.Fatal(err)
			}
			g.expect("A", "P2P_UNREGISTER +ack")
			g.expect("B", "P2P_UNREGISTER +ack")
			g.pair("A", "B")
			if err := g.relays["n1"].Kick("B"); err != nil {
				t.Fatal(err)
			}
			g.flush()
			g.expect("B", "SERVER_ERROR KICKED")
			g.expect("A", "P2P_DISCONNECT")
			if g.devs["B"].conn.Disconnected() != 1 {
				t.Errorf("B not disconnected")
			}
		}},
		{"streams across nodes", server.Config{}, func(g *rig) {
			g.joinOn("n1", "A", gen2)
			g.joinOn("n2", "B", gen2)
			g.pair("A", "B")
			g.send("A", protocol.EventRegisterStream, true, "B")
			g.expect("B", "P2P_REGISTER_STREAM +ack")
			g.answer("B", protocol.EventRegisterStream, true)
			g.answers("A", "true")
			g.send("A", protocol.EventEmitAck, true, relayTo("B", protocol.EventEmitStream, "chunk"))
			g.expect("B", `P2P_EMIT_STREAM "chunk" +ack`)
			g.advance(time.Hour)
			g.answers("A")
			g.answer("B", protocol.EventEmitStream)
			g.answers("A", "")
		}},
		{"a node that leaves fails what others await from it", server.Config{}, func(g *rig) {
			g.joinOn("n1", "A", gen2)
			g.joinOn("n2", "B", gen2)
			g.pair("A", "B")
			g.send("A", protocol.EventEmitAck, true, relayTo("B", "q"))
			g.expect("B", "q +ack")
			g.bus.Kill("n2")
			g.relays["n1"].NodeGone("n2")
			g.answers("A", "error:OFFLINE")
			g.expect("A", "SERVER_ERROR OFFLINE")
			b := g.devs["B"]
			b.conn.Take()
			b.r.Leave(b.s, "end of test") // the dead node's own state
			delete(g.devs, "B")
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := newCluster(t, c.cfg, "n1", "n2")
			c.run(g)
			g.done()
		})
	}
}

package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server"
	"github.com/p2prelay/p2prelay/server/relaytest"
)

// memDevices lists a memory store's devices by node, for the reaper.
type memDevices struct{ server.Store }

func (m memDevices) DevicesOn(node string) ([]server.Device, error) {
	var out []server.Device
	for _, d := range m.Devices() {
		if d.Node == node {
			out = append(out, d)
		}
	}
	return out, nil
}

// testNode is a relay on a Node of a cluster on miniredis.
type testNode struct {
	relay  *server.Relay
	node   *Node
	obs    relaytest.Observer
	fenced atomic.Int32
}

func startNode(t *testing.T, mr *miniredis.Miniredis, store server.Store, id string, lease time.Duration) *testNode {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	tn := &testNode{}
	node, err := NewNode(NodeConfig{Client: rdb, ID: id, Address: "127.0.0.1:" + id, Lease: lease,
		OnFence: func() { tn.fenced.Add(1) }, OnUnfence: func() { tn.fenced.Add(-1) }})
	if err != nil {
		t.Fatal(err)
	}
	relay, err := server.New(server.Config{Store: store, Node: id, Bus: node, Observer: node.Observer(&tn.obs), ResumeWindow: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Start(context.Background(), relay, memDevices{store}, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = node.Close(context.Background()) })
	tn.relay, tn.node = relay, node
	return tn
}

func join(t *testing.T, r *server.Relay, id string) (*server.Session, *relaytest.Conn) {
	t.Helper()
	c := &relaytest.Conn{}
	s, err := r.Join(server.ConnInfo{DeviceID: id, ConnID: "c-" + id + fmt.Sprint(time.Now().UnixNano()), Gen: protocol.Gen2}, c)
	if err != nil {
		t.Fatalf("join %s: %v", id, err)
	}
	return s, c
}

// await waits until cond holds, or fails the test after a deadline.
func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// next waits for the next thing c was sent.
func next(t *testing.T, c *relaytest.Conn, pending *[]relaytest.Sent) relaytest.Sent {
	t.Helper()
	await(t, "an event", func() bool {
		*pending = append(*pending, c.Take()...)
		return len(*pending) > 0
	})
	s := (*pending)[0]
	*pending = (*pending)[1:]
	return s
}

func pairAcross(t *testing.T, a *server.Relay, sa *server.Session, b string, cb *relaytest.Conn) {
	t.Helper()
	answered := make(chan protocol.Args, 1)
	a.Handle(sa, protocol.EventRegister, protocol.NewArgs(b), func(v protocol.Args) { answered <- v })
	var pending []relaytest.Sent
	ask := next(t, cb, &pending)
	if ask.Event != protocol.EventRegister {
		t.Fatalf("%s was sent %s, want a pairing request", b, ask)
	}
	ask.Answer(true)
	select {
	case v := <-answered:
		if !v.FirstIsTrue() {
			t.Fatalf("pairing answered %s", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no pairing answer")
	}
}

func TestNodesRelayThroughRedis(t *testing.T) {
	mr := miniredis.RunT(t)
	store := server.NewMemoryStore(nil)
	n1 := startNode(t, mr, store, "n1", time.Second)
	n2 := startNode(t, mr, store, "n2", time.Second)
	sa, ca := join(t, n1.relay, "A")
	_, cb := join(t, n2.relay, "B")
	pairAcross(t, n1.relay, sa, "B", cb)
	// Each node's observer follows the whole cluster.
	var seen1 []string
	await(t, "n1 to hear of B", func() bool {
		seen1 = append(seen1, n1.obs.Take()...)
		return slices.Contains(seen1, "device_connected B")
	})

	// In order, raw JSON byte for byte, binary as bytes, every ack value.
	const n = 300
	for i := range n {
		n1.relay.Handle(sa, protocol.EventEmit, protocol.NewArgs(map[string]any{
			"targetClientId": "B", "event": "tick", "args": protocol.RawArgs([]byte(fmt.Sprintf(`{"i":%d,"z":1,"a":2}`, i))),
		}), nil)
	}
	var pending []relaytest.Sent
	for i := range n {
		got := next(t, cb, &pending)
		raw, _ := got.Args.Raw()
		if want := fmt.Sprintf(`{"i":%d,"z":1,"a":2}`, i); got.Event != "tick" || string(raw) != want {
			t.Fatalf("message %d arrived as %s %s, want tick %s", i, got.Event, raw, want)
		}
	}
	answer := make(chan protocol.Args, 1)
	n1.relay.Handle(sa, protocol.EventEmitAck, protocol.NewArgs(map[string]any{
		"targetClientId": "B", "event": "q", "args": []any{[]byte{0, 1, 255}},
	}), func(v protocol.Args) { answer <- v })
	q := next(t, cb, &pending)
	if vals := q.Args.Values(); q.Event != "q" || len(vals) != 1 || !slices.Equal(vals[0].([]byte), []byte{0, 1, 255}) {
		t.Fatalf("binary arrived as %#v", vals)
	}
	q.Answer("one", 2.0, []byte{9})
	select {
	case v := <-answer:
		vals := v.Values()
		if len(vals) != 3 || vals[0] != "one" || vals[1] != 2.0 || !slices.Equal(vals[2].([]byte), []byte{9}) {
			t.Fatalf("the answer came back as %#v", vals)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no answer across nodes")
	}
	if got := ca.Events(); len(got) != 0 {
		t.Fatalf("A was sent %q", got)
	}
}

func TestADeadNodeIsReaped(t *testing.T) {
	mr := miniredis.RunT(t)
	store := server.NewMemoryStore(nil)
	lease := 600 * time.Millisecond
	n1 := startNode(t, mr, store, "n1", lease)
	n2 := startNode(t, mr, store, "n2", lease)
	sa, ca := join(t, n1.relay, "A")
	_, cb := join(t, n2.relay, "B")
	join(t, n2.relay, "C") // unpaired: gone with its node
	pairAcross(t, n1.relay, sa, "B", cb)
	answer := make(chan protocol.Args, 1)
	n1.relay.Handle(sa, protocol.EventEmitAck, protocol.NewArgs(map[string]any{"targetClientId": "B", "event": "q"}),
		func(v protocol.Args) { answer <- v })

	// n2 dies without a word: its lease runs out.
	n2.node.cancel()
	n2.node.done.Wait()
	mr.FastForward(lease)
	select {
	case v := <-answer:
		if e := protocol.ParseAckError(v.Values()); e == nil || e.Code != protocol.CodeOffline {
			t.Fatalf("the ack owed by a device of a dead node answered %s", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the ack owed by a device of a dead node was never answered")
	}
	await(t, "C to be reaped", func() bool { _, ok := store.Get("C"); return !ok })
	// B is away, its pair standing, for the window; then A is told.
	var pending []relaytest.Sent
	for {
		s := next(t, ca, &pending)
		if s.Event == protocol.EventDisconnect {
			break
		}
	}
	if _, ok := store.Get("B"); ok {
		t.Fatal("B still held after its window")
	}
	join(t, n1.relay, "B") // the id is free
}

func TestANodeWithoutRedisFencesItself(t *testing.T) {
	mr := miniredis.RunT(t)
	store := server.NewMemoryStore(nil)
	n1 := startNode(t, mr, store, "n1", 300*time.Millisecond)
	mr.Close()
	await(t, "the node to fence itself", func() bool { return n1.fenced.Load() == 1 && n1.node.Fenced() })
	if err := mr.Restart(); err != nil {
		t.Fatal(err)
	}
	await(t, "the node to serve again", func() bool { return n1.fenced.Load() == 0 && !n1.node.Fenced() })
	infos, err := n1.node.Nodes(context.Background())
	if err != nil || len(infos) != 1 || infos[0].ID != "n1" || !strings.HasPrefix(infos[0].Address, "127.0.0.1") {
		t.Fatalf("nodes %+v, %v", infos, err)
	}
}

// TestCloseSendsWhatWasQueued: a node that leaves first sends what its
// relay queued for the other nodes (a leaving node's last links tell its
// devices' peers where they went), and only then gives its lease up.
func TestCloseSendsWhatWasQueued(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	node, err := NewNode(NodeConfig{Client: rdb, ID: "n1", Lease: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	relay, err := server.New(server.Config{Node: "n1", Bus: node})
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Start(context.Background(), relay, memDevices{server.NewMemoryStore(time.Now)}, nil); err != nil {
		t.Fatal(err)
	}
	sub := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer sub.Close()
	ps := sub.Subscribe(context.Background(), node.key("bus", "n2"))
	defer ps.Close()
	if _, err := ps.Receive(context.Background()); err != nil {
		t.Fatal(err)
	}
	const sent = 5000
	for i := range sent {
		node.Send("n2", server.Envelope{Kind: server.EnvLink, To: fmt.Sprint("d", i), From: "p", PeerNode: "n3"})
	}
	if err := node.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	_ = rdb.Close() // as p2pd does once the node left
	if mr.Exists(node.key("lease", "n1")) {
		t.Fatal("the lease is still there after Close")
	}
	ch := ps.Channel()
	for i := range sent {
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("%d of %d envelopes arrived", i, sent)
		}
	}
}

// TestANodeReapedByAnotherIsGoneForAll: when a dead node's devices were
// reaped by another node before this one saw its lease run out, this one
// still answers what it awaited from the dead node.
func TestANodeReapedByAnotherIsGoneForAll(t *testing.T) {
	mr := miniredis.RunT(t)
	store := server.NewMemoryStore(nil)
	lease := 600 * time.Millisecond
	n1 := startNode(t, mr, store, "n1", lease)
	n3 := startNode(t, mr, store, "n3", lease)
	sa, _ := join(t, n1.relay, "A")
	_, cb := join(t, n3.relay, "B")
	pairAcross(t, n1.relay, sa, "B", cb)
	await(t, "n1 to see n3 alive", func() bool { _, ok := n1.node.alive.Load("n3"); return ok })
	answer := make(chan protocol.Args, 1)
	n1.relay.Handle(sa, protocol.EventEmitAck, protocol.NewArgs(map[string]any{"targetClientId": "B", "event": "q"}),
		func(v protocol.Args) { answer <- v })

	// n3 dies, and another node reaps it at once: n3 leaves the list of
	// nodes before n1 looks again.
	n3.node.cancel()
	n3.node.done.Wait()
	if _, err := mr.SRem(n1.node.key("nodes"), "n3"); err != nil {
		t.Fatal(err)
	}
	mr.Del(n1.node.key("lease", "n3"))
	select {
	case v := <-answer:
		if e := protocol.ParseAckError(v.Values()); e == nil || e.Code != protocol.CodeOffline {
			t.Fatalf("the ack owed by a device of a dead node answered %s", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the ack owed by a device of a node reaped by another was never answered")
	}
}

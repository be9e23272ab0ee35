package peer_test

import (
	"context"
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/p2prelay/p2prelay/internal/testkit"
	"github.com/p2prelay/p2prelay/peer"
	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server"
	"github.com/p2prelay/p2prelay/server/socketio"
)

// serveAt runs a relay on addr (an explicit 127.0.0.1 port) until the test
// ends.
func serveAt(t *testing.T, addr string) *socketio.Service {
	t.Helper()
	svc, err := socketio.NewService(socketio.ServiceConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*testkit.Wait)
		defer cancel()
		_ = svc.Shutdown(ctx)
		<-done
	})
	return svc
}

// TestRelayRestart: the relay shuts down and a new one starts on the same
// port; both devices come back with their ids, unpaired, and A
// (Config.Repair) pairs again with B by itself.
func TestRelayRestart(t *testing.T) {
	r1 := start(t, server.Config{})
	addr := strings.TrimPrefix(r1.URL, "http://")
	a := dial(t, r1.URL, "A", func(c *peer.Config) { c.Repair = true })
	b := dial(t, r1.URL, "B")
	pair(t, a, b)

	ctx, cancel := context.WithTimeout(context.Background(), 2*testkit.Wait)
	defer cancel()
	if err := r1.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for _, d := range []*device{a, b} {
		if n := d.notice(t, peer.Unpaired); n.Reason != string(peer.ReasonPeerGone) {
			t.Fatalf("%s: %+v", d.ID(), n)
		}
		if n := d.notice(t, peer.Disconnected); protocol.CodeOf(n.Err) != protocol.CodeShuttingDown {
			t.Fatalf("%s: disconnected %+v, want SHUTTING_DOWN", d.ID(), n)
		}
	}
	if err := a.Emit(context.Background(), "x"); err == nil {
		t.Fatal("emit while the relay is down succeeded")
	}

	r2 := serveAt(t, addr)
	if n := a.notice(t, peer.Reconnected); n.Peer != "B" {
		t.Fatalf("A reconnected %+v, want last peer B", n)
	}
	if n := b.notice(t, peer.Reconnected); n.Peer != "A" {
		t.Fatalf("B reconnected %+v, want last peer A", n)
	}
	if got := r2.Relay.DeviceIDs(); len(got) != 2 {
		t.Fatalf("new relay has %v", got)
	}
	if n := a.notice(t, peer.Paired); n.Peer != "B" {
		t.Fatalf("A paired again with %q", n.Peer)
	}
	if n := b.notice(t, peer.Paired); n.Peer != "A" {
		t.Fatalf("B paired again with %q", n.Peer)
	}
	if err := a.Emit(context.Background(), "back"); err != nil {
		t.Fatal(err)
	}
	if ev := b.event(t); ev.Name != "back" {
		t.Fatalf("B got %q", ev.Name)
	}
}

// TestConnectionDrops: the network under one device fails while the relay
// still holds its old connection, which stays silent; the device comes
// back under its id once the relay has checked the old connection
// (ReclaimCheck) and let it go. With the resume window off, the pair does
// not survive. (The relay's heartbeat is left long: a short one can drop a
// device of a loaded machine before the network fails.)
func TestConnectionDrops(t *testing.T) {
	r := testkit.StartRelay(t, socketio.ServiceConfig{Relay: server.Config{ResumeWindow: -1, ReclaimCheck: 500 * time.Millisecond}})
	px := startProxy(t, strings.TrimPrefix(r.URL, "http://"))
	a := dial(t, px.URL(), "A", func(c *peer.Config) { c.Transports = []string{"websocket"} })
	b := dial(t, r.URL, "B")
	pair(t, a, b)

	px.cut(true)
	if n := a.nextNotice(t); n.Kind != peer.Disconnected {
		t.Fatalf("A: %+v, want disconnected", n)
	}
	if n := b.notice(t, peer.Unpaired); n.Peer != "A" || n.Reason != string(peer.ReasonPeerGone) {
		t.Fatalf("B: %+v", n)
	}
	if n := a.nextNotice(t); n.Kind != peer.Reconnected || n.Peer != "B" {
		t.Fatalf("A reconnected %+v", n)
	}
	// Asked, the relay says it did not keep the pair.
	if n := a.nextNotice(t); n.Kind != peer.Unpaired || n.Peer != "B" || n.Reason != string(peer.ReasonConnectionLost) {
		t.Fatalf("A: %+v", n)
	}
	if !a.Connected() {
		t.Fatal("A not connected after Reconnected")
	}
	pair(t, a, b)
	if err := b.Emit(context.Background(), "still-there"); err != nil {
		t.Fatal(err)
	}
	if ev := a.event(t); ev.Name != "still-there" || ev.From != "B" {
		t.Fatalf("A got %q from %q", ev.Name, ev.From)
	}
}

// awayAndBack cuts A's connection (through px) and keeps A away until the
// relay has marked it away; it returns a function that lets A back.
func awayAndBack(t *testing.T, px *proxy, events <-chan server.Event) (letBack func()) {
	t.Helper()
	px.down.Store(true)
	px.cut(false)
	relayEvent(t, events, server.DeviceAway, "A")
	return func() { px.down.Store(false) }
}

// TestResumeWithinWindow: A's connection drops and comes back within the
// relay's resume window. Neither side is told the pair ended; what B sent
// meanwhile reaches A once, in order; both go on as a pair.
func TestResumeWithinWindow(t *testing.T) {
	r, events := startWatched(t, socketio.ServiceConfig{Relay: server.Config{ResumeWindow: time.Minute}})
	px := startProxy(t, strings.TrimPrefix(r.URL, "http://"))
	a := dial(t, px.URL(), "A", func(c *peer.Config) { c.Repair = true })
	b := dial(t, r.URL, "B")
	pair(t, a, b)

	letBack := awayAndBack(t, px, events)
	if n := a.nextNotice(t); n.Kind != peer.Disconnected {
		t.Fatalf("A: %+v, want disconnected", n)
	}
	if got, ok := a.Peer.Peer(); !ok || got != "B" {
		t.Fatalf("A.Peer() while away = %q, %v; want B", got, ok)
	}
	if err := a.Emit(context.Background(), "x"); !errors.Is(err, peer.ErrNotConnected) {
		t.Fatalf("emit while away: %v, want ErrNotConnected", err)
	}
	ctx := context.Background()
	for i := range 5 {
		if err := b.Emit(ctx, "held", float64(i)); err != nil {
			t.Fatalf("B emit %d while A is away: %v", i, err)
		}
	}
	letBack()
	relayEvent(t, events, server.DeviceResumed, "A")
	if n := a.nextNotice(t); n.Kind != peer.Reconnected || n.Peer != "B" {
		t.Fatalf("A: %+v, want reconnected (B)", n)
	}
	for i := range 5 {
		ev := a.event(t)
		if ev.Name != "held" || ev.From != "B" || !reflect.DeepEqual(ev.Args, []any{float64(i)}) {
			t.Fatalf("A got %q %v from %q, want held [%d] from B", ev.Name, ev.Args, ev.From, i)
		}
	}
	if n := a.nextNotice(t); n.Kind != peer.Resumed || n.Peer != "B" {
		t.Fatalf("A: %+v, want resumed (B)", n)
	}
	// Nothing twice, nothing more, on either side; the pair works both ways.
	a.quiet(t, b)
	b.quiet(t, a)
	if got, ok := a.Peer.Peer(); !ok || got != "B" {
		t.Fatalf("A.Peer() = %q, %v", got, ok)
	}
}

// TestResumeWindowPasses: A stays away past the window. B is told the pair
// ended; A, back, learns it from the relay, then (Config.Repair) pairs
// again with B.
func TestResumeWindowPasses(t *testing.T) {
	r, events := startWatched(t, socketio.ServiceConfig{Relay: server.Config{ResumeWindow: 100 * time.Millisecond, PairRate: server.Unlimited}})
	px := startProxy(t, strings.TrimPrefix(r.URL, "http://"))
	a := dial(t, px.URL(), "A", func(c *peer.Config) { c.Repair = true })
	b := dial(t, r.URL, "B")
	pair(t, a, b)

	letBack := awayAndBack(t, px, events)
	if n := b.nextNotice(t); n.Kind != peer.Unpaired || n.Peer != "A" || n.Reason != string(peer.ReasonPeerGone) {
		t.Fatalf("B: %+v, want unpaired (A, peer_gone)", n)
	}
	relayEvent(t, events, server.DeviceDisconnected, "A")
	letBack()
	for _, want := range []peer.NoticeKind{peer.Disconnected, peer.Reconnected, peer.Unpaired, peer.Paired} {
		n := a.nextNotice(t)
		if n.Kind != want || (want != peer.Disconnected && n.Peer != "B") {
			t.Fatalf("A: %+v, want %s", n, want)
		}
		if want == peer.Unpaired && n.Reason != string(peer.ReasonConnectionLost) {
			t.Fatalf("A: %+v, want reason connection_lost", n)
		}
	}
	if n := b.nextNotice(t); n.Kind != peer.PairRequest || n.Peer != "A" || !n.Accepted {
		t.Fatalf("B: %+v, want A's pair request", n)
	}
	if n := b.nextNotice(t); n.Kind != peer.Paired || n.Peer != "A" {
		t.Fatalf("B: %+v, want paired (A)", n)
	}
	a.quiet(t, b)
	b.quiet(t, a)
}

package peer_test

import (
	"context"
	"net"
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
// port; both devices come back with their ids, unpaired, and pair again.
func TestRelayRestart(t *testing.T) {
	r1 := start(t, server.Config{})
	addr := strings.TrimPrefix(r1.URL, "http://")
	a := dial(t, r1.URL, "A")
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
	pair(t, a, b)
	if err := a.Emit(context.Background(), "back"); err != nil {
		t.Fatal(err)
	}
	if ev := b.event(t); ev.Name != "back" {
		t.Fatalf("B got %q", ev.Name)
	}
}

// TestConnectionDrops: the network under one device fails while the relay
// still holds its old connection; the device retries through ID_IN_USE
// until the relay's heartbeat lets the old connection go. With the resume
// window off, the pair does not survive.
func TestConnectionDrops(t *testing.T) {
	r := testkit.StartRelay(t, socketio.ServiceConfig{PingInterval: 100 * time.Millisecond, PingTimeout: 200 * time.Millisecond, Relay: server.Config{ResumeWindow: -1}})
	px := startProxy(t, strings.TrimPrefix(r.URL, "http://"))
	a := dial(t, px.URL(), "A", func(c *peer.Config) { c.Transports = []string{"websocket"} })
	b := dial(t, r.URL, "B")
	pair(t, a, b)

	px.cut(true)
	if n := a.notice(t, peer.Unpaired); n.Peer != "B" || n.Reason != string(peer.ReasonConnectionLost) {
		t.Fatalf("A: %+v", n)
	}
	a.notice(t, peer.Disconnected)
	if n := b.notice(t, peer.Unpaired); n.Peer != "A" || n.Reason != string(peer.ReasonPeerGone) {
		t.Fatalf("B: %+v", n)
	}
	if n := a.notice(t, peer.Reconnected); n.Peer != "B" {
		t.Fatalf("A reconnected %+v", n)
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

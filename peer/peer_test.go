package peer_test

import (
	"context"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	sio "github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/p2prelay/p2prelay/internal/testkit"
	"github.com/p2prelay/p2prelay/peer"
	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server"
	"github.com/p2prelay/p2prelay/server/socketio"
)

func TestPairEmitAckUnpairAndRepair(t *testing.T) {
	r := start(t, server.Config{})
	a := dial(t, r.URL, "A")
	b := dial(t, r.URL, "B")
	b.Handle("double", func(ev peer.Event) {
		n, _ := ev.Args[0].(float64)
		if err := ev.Ack(2*n, "ok", map[string]any{"from": "B"}); err != nil {
			t.Errorf("ack: %v", err)
		}
		if err := ev.Ack("again"); err == nil {
			t.Errorf("second ack succeeded")
		}
	})

	pair(t, a, b)
	if got, ok := a.Peer.Peer(); !ok || got != "B" {
		t.Fatalf("A.Peer() = %q, %v", got, ok)
	}

	ctx := context.Background()
	args := []any{"x", 1.0, map[string]any{"k": true}, []any{nil, "y"}}
	if err := a.Emit(ctx, "hello", args...); err != nil {
		t.Fatalf("emit: %v", err)
	}
	ev := b.event(t)
	if ev.Name != "hello" || ev.From != "A" || ev.WantsAck() || !reflect.DeepEqual(ev.Args, args) {
		t.Fatalf("B got %q %v from %q ack=%v", ev.Name, ev.Args, ev.From, ev.WantsAck())
	}
	if err := ev.Ack(1); err == nil {
		t.Fatal("Ack of an event without ack succeeded")
	}

	got, err := a.EmitAck(ctx, "double", 21.0)
	if err != nil {
		t.Fatalf("emit ack: %v", err)
	}
	if want := []any{42.0, "ok", map[string]any{"from": "B"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ack answered %v, want %v", got, want)
	}

	// The other way, answered through OnEvent, and with no values.
	res := make(chan error, 1)
	var answer []any
	go func() {
		var err error
		answer, err = b.EmitAck(ctx, "ping")
		res <- err
	}()
	ping := a.event(t)
	if ping.Name != "ping" || !ping.WantsAck() || len(ping.Args) != 0 {
		t.Fatalf("A got %q %v ack=%v", ping.Name, ping.Args, ping.WantsAck())
	}
	if err := ping.Ack(); err != nil {
		t.Fatal(err)
	}
	if err := <-res; err != nil || len(answer) != 0 {
		t.Fatalf("empty ack: %v, %v", answer, err)
	}

	// Unpair: A says it did, B that the pair ended.
	if err := a.Unpair(ctx); err != nil {
		t.Fatalf("unpair: %v", err)
	}
	if n := a.notice(t, peer.Unpaired); n.Peer != "B" || n.Reason != string(peer.ReasonUnregistered) {
		t.Fatalf("A: %+v", n)
	}
	if n := b.notice(t, peer.Unpaired); n.Peer != "A" || n.Reason != string(peer.ReasonEnded) {
		t.Fatalf("B: %+v", n)
	}
	if _, ok := b.Peer.Peer(); ok {
		t.Fatal("B still has a peer")
	}
	if err := a.Unpair(ctx); !errors.Is(err, peer.ErrNotPaired) {
		t.Fatalf("second unpair: %v, want NOT_PAIRED", err)
	}
	if err := a.Emit(ctx, "hello"); !errors.Is(err, peer.ErrNotPaired) {
		t.Fatalf("emit unpaired: %v, want NOT_PAIRED", err)
	}

	// Re-pair, the other way round.
	pair(t, b, a)
	if err := b.Emit(ctx, "again"); err != nil {
		t.Fatal(err)
	}
	if ev := a.event(t); ev.Name != "again" || ev.From != "B" {
		t.Fatalf("A got %q from %q", ev.Name, ev.From)
	}
	// Pairing again with the current peer is a no-op.
	if err := b.Pair(ctx, "A"); err != nil {
		t.Fatalf("pair with current peer: %v", err)
	}
}

func TestEmitAckAsyncKeepsOrder(t *testing.T) {
	r := start(t, server.Config{})
	a := dial(t, r.URL, "A")
	b := dial(t, r.URL, "B")
	pair(t, a, b)
	ctx := context.Background()
	first := a.EmitAckAsync(ctx, "first")
	if err := a.Emit(ctx, "second"); err != nil {
		t.Fatal(err)
	}
	ev1, ev2 := b.event(t), b.event(t)
	if ev1.Name != "first" || ev2.Name != "second" {
		t.Fatalf("B got %q then %q", ev1.Name, ev2.Name)
	}
	if err := ev1.Ack("late", 1.0); err != nil {
		t.Fatal(err)
	}
	select {
	case ans := <-first:
		if ans.Err != nil || !reflect.DeepEqual(ans.Args, []any{"late", 1.0}) {
			t.Fatalf("answer %+v", ans)
		}
	case <-time.After(testkit.Wait):
		t.Fatal("no answer")
	}
	if ans := <-a.EmitAckAsync(ctx, "P2P_X"); protocol.CodeOf(ans.Err) != protocol.CodeReservedEvent {
		t.Fatalf("reserved: %+v", ans)
	}
}

func TestPairRefusals(t *testing.T) {
	r := start(t, server.Config{PairTimeout: 300 * time.Millisecond, PairRate: server.Unlimited})
	a := dial(t, r.URL, "A")
	b := dial(t, r.URL, "B")
	c := dial(t, r.URL, "C")
	no := dial(t, r.URL, "NO", func(c *peer.Config) { c.Accept = peer.AcceptNone() })
	only := dial(t, r.URL, "ONLY", func(c *peer.Config) { c.Accept = peer.AcceptIDs("B") })
	mute := testkit.Dial(t, r.URL, "MUTE") // never answers pair requests
	pair(t, a, b)
	ctx := context.Background()

	cases := []struct {
		name   string
		from   *device
		target string
		want   error
	}{
		{"offline", c, "nobody", peer.ErrOffline},
		{"self", c, "C", peer.ErrSelf},
		{"target busy", c, "A", peer.ErrBusy},
		{"source busy", a, "C", peer.ErrBusy},
		{"refused", c, "NO", peer.ErrRefused},
		{"not on the list", c, "ONLY", peer.ErrRefused},
		{"no answer", c, "MUTE", peer.ErrTimeout},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.from.Pair(ctx, tc.target)
			if !errors.Is(err, tc.want) {
				t.Fatalf("pair %s -> %s: %v, want %v", tc.from.ID(), tc.target, err, tc.want)
			}
			if protocol.CodeOf(err) != protocol.CodeOf(tc.want) {
				t.Fatalf("code %q, want %q", protocol.CodeOf(err), protocol.CodeOf(tc.want))
			}
			if _, ok := tc.from.Peer.Peer(); ok && tc.from != a {
				t.Fatal("paired after a refusal")
			}
		})
	}
	mute.Next(protocol.EventRegister) // it was asked

	// The refusing devices said so in notices.
	if n := no.notice(t, peer.PairRequest); n.Peer != "C" || n.Accepted {
		t.Fatalf("NO: %+v", n)
	}
	// The listed device is accepted.
	if err := b.Unpair(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Pair(ctx, "ONLY"); err != nil {
		t.Fatalf("listed device refused: %v", err)
	}
	if n := only.notice(t, peer.Paired); n.Peer != "B" {
		t.Fatalf("ONLY: %+v", n)
	}
	if err := c.Pair(ctx, "bad\nid"); protocol.CodeOf(err) != protocol.CodeBadID {
		t.Fatalf("bad id: %v", err)
	}
}

func TestPairGivenUpLocallyThenAcceptedIsUndone(t *testing.T) {
	r := start(t, server.Config{PairTimeout: 5 * time.Second})
	a := dial(t, r.URL, "A")
	slow := testkit.Dial(t, r.URL, "SLOW")

	err := a.Pair(ctxTimeout(t, 200*time.Millisecond), "SLOW")
	if !isTimeout(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("pair: %v, want TIMEOUT and deadline exceeded", err)
	}
	ask := slow.Next(protocol.EventRegister)
	ask.Ack(true) // too late for A, not for the relay
	// A does not keep a pair it no longer wants: the relay unpairs SLOW.
	ev := slow.Next(protocol.EventUnregister)
	if ev.Ack != nil {
		ev.Ack()
	}
	if _, ok := a.Peer.Peer(); ok {
		t.Fatal("A has a peer")
	}
	// And A is free to pair again.
	b := dial(t, r.URL, "B")
	pair(t, a, b)
}

func TestEmitRefusalsAndAckTimeout(t *testing.T) {
	r := start(t, server.Config{AckTimeout: 300 * time.Millisecond})
	a := dial(t, r.URL, "A")
	b := dial(t, r.URL, "B", func(c *peer.Config) { c.OnEvent = nil }) // handles nothing
	pair(t, a, b)
	ctx := context.Background()

	if err := a.Emit(ctx, "P2P_REGISTER", "x"); protocol.CodeOf(err) != protocol.CodeReservedEvent {
		t.Fatalf("reserved: %v", err)
	}
	if _, err := a.EmitAck(ctx, "disconnect"); protocol.CodeOf(err) != protocol.CodeReservedEvent {
		t.Fatalf("reserved with ack: %v", err)
	}
	if err := a.Emit(ctx, ""); protocol.CodeOf(err) != protocol.CodeBadRequest {
		t.Fatalf("empty name: %v", err)
	}
	// B has no handler: A's ack ends with the relay's TIMEOUT.
	if _, err := a.EmitAck(ctx, "unheard"); !isTimeout(err) {
		t.Fatalf("unanswered ack: %v, want TIMEOUT", err)
	}
	// A local deadline shorter than the relay's.
	if _, err := a.EmitAck(ctxTimeout(t, 50*time.Millisecond), "unheard"); !isTimeout(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("local deadline: %v", err)
	}
	// A cancelled request is not a timeout.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := a.EmitAck(cctx, "unheard"); !errors.Is(err, context.Canceled) || isTimeout(err) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestPeerDropsAndComesBackAsNewDevice(t *testing.T) {
	r := start(t, server.Config{})
	a := dial(t, r.URL, "A")
	b := dial(t, r.URL, "B")
	pair(t, a, b)
	_ = b.Close()
	<-b.Done()
	if n := a.notice(t, peer.Unpaired); n.Peer != "B" || n.Reason != string(peer.ReasonPeerGone) {
		t.Fatalf("A: %+v", n)
	}
	if err := a.Emit(context.Background(), "x"); !errors.Is(err, peer.ErrNotPaired) {
		t.Fatalf("emit after the peer left: %v", err)
	}
	// Requests on a closed peer fail at once.
	if err := b.Emit(context.Background(), "x"); !errors.Is(err, peer.ErrClosed) && !errors.Is(err, peer.ErrNotPaired) {
		t.Fatalf("emit on closed peer: %v", err)
	}
	if err := b.Pair(context.Background(), "A"); !errors.Is(err, peer.ErrClosed) {
		t.Fatalf("pair on closed peer: %v", err)
	}
	b2 := dial(t, r.URL, "B")
	pair(t, b2, a)
}

func TestDevices(t *testing.T) {
	r := start(t, server.Config{})
	a := dial(t, r.URL, "A")
	b := dial(t, r.URL, "B")
	dial(t, r.URL, "C")
	pair(t, a, b)
	all, err := a.Devices(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	want := []protocol.DeviceEntry{{ID: "A"}, {ID: "B"}, {ID: "C", Available: true}}
	if !reflect.DeepEqual(all, want) {
		t.Fatalf("devices %v, want %v", all, want)
	}
	free, err := a.Devices(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	if want := []protocol.DeviceEntry{{ID: "C", Available: true}}; !reflect.DeepEqual(free, want) {
		t.Fatalf("available %v, want %v", free, want)
	}
}

// TestGenerationOneDevice pairs a peer with a generation-1 device played by
// hand, both ways, acknowledgements included.
func TestGenerationOneDevice(t *testing.T) {
	r := start(t, server.Config{})
	a := dial(t, r.URL, "A")
	g := testkit.DialGen1(t, r.URL, "G1")
	ctx := context.Background()

	// The peer asks; the old device answers with an event.
	res := make(chan error, 1)
	go func() { res <- a.Pair(ctx, "G1") }()
	ask := g.Next(protocol.EventRegister)
	if len(ask.Args) != 1 || ask.Args[0] != "A" {
		t.Fatalf("G1 asked %v", ask.Args)
	}
	g.Emit(protocol.EventRegisterSuccess)
	if err := <-res; err != nil {
		t.Fatalf("pair with gen 1: %v", err)
	}
	if n := a.nextNotice(t); n.Kind != peer.Paired || n.Peer != "G1" {
		t.Fatalf("A: %+v", n)
	}

	go func() {
		v, err := a.EmitAck(ctx, "question", "why")
		if err == nil && !reflect.DeepEqual(v, []any{"because", 42.0}) {
			err = errors.New("wrong answer")
		}
		res <- err
	}()
	q := g.Next("question")
	if q.Ack == nil || !reflect.DeepEqual(q.Args, []any{"why"}) {
		t.Fatalf("G1 got %v ack=%v", q.Args, q.Ack != nil)
	}
	q.Ack("because", 42.0)
	if err := <-res; err != nil {
		t.Fatalf("ack from gen 1: %v", err)
	}

	// The old device sends with its own key and asks for an answer.
	a.Handle("hi", func(ev peer.Event) { _ = ev.Ack("hello " + ev.Args[0].(string)) })
	got := g.Request(protocol.EventEmitAck, map[string]any{protocol.KeyTargetDeviceID: "A", "event": "hi", "args": []any{"old"}})
	if !reflect.DeepEqual(got, []any{"hello old"}) {
		t.Fatalf("G1 got answer %v", got)
	}

	// Unpairing tells the old device in its words.
	if err := a.Unpair(ctx); err != nil {
		t.Fatal(err)
	}
	g.Next(protocol.EventDisconnect)
	if n := a.nextNotice(t); n.Kind != peer.Unpaired || n.Reason != string(peer.ReasonUnregistered) {
		t.Fatalf("A: %+v", n)
	}

	// The old device asks; the peer answers through the ack.
	if v := g.Request(protocol.EventRegister, "A"); !reflect.DeepEqual(v, []any{true}) {
		t.Fatalf("gen 1 pair request answered %v", v)
	}
	if n := a.notice(t, peer.Paired); n.Peer != "G1" {
		t.Fatalf("A: %+v", n)
	}
	g.Emit(protocol.EventEmit, map[string]any{protocol.KeyTargetDeviceID: "A", "event": "news", "args": []any{1.0}})
	if ev := a.event(t); ev.Name != "news" || ev.From != "G1" {
		t.Fatalf("A got %q from %q", ev.Name, ev.From)
	}
	g.Close()
	if n := a.notice(t, peer.Unpaired); n.Reason != string(peer.ReasonPeerGone) {
		t.Fatalf("A: %+v", n)
	}
}

func TestConnectFailures(t *testing.T) {
	r := start(t, server.Config{})
	dial(t, r.URL, "A")
	// Over websocket: a refused polling connection leaves an Engine.IO
	// session on the relay until its heartbeat ends it, which holds up
	// the relay's shutdown at the end of the test.
	_, err := tryDial(t, r.URL, "A", func(c *peer.Config) { c.Transports = []string{"websocket"} })
	if !errors.Is(err, peer.ErrConnect) || protocol.CodeOf(err) != protocol.CodeIDInUse {
		t.Fatalf("duplicate id: %v, want ErrConnect with ID_IN_USE", err)
	}

	// Nothing listens there any more.
	gone := testkit.StartRelay(t, socketio.ServiceConfig{})
	u := gone.URL
	if err := gone.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := tryDial(t, u, "B", func(c *peer.Config) { c.Timeout = time.Second }); !errors.Is(err, peer.ErrConnect) {
		t.Fatalf("no relay: %v, want ErrConnect", err)
	}

	for _, tc := range []struct {
		name string
		mod  func(*peer.Config)
	}{
		{"bad id", func(c *peer.Config) { c.ID = "" }},
		{"bad url", func(c *peer.Config) { c.URL = "ftp://x" }},
		{"bad transport", func(c *peer.Config) { c.Transports = []string{"pigeon"} }},
		{"negative timeout", func(c *peer.Config) { c.Timeout = -1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tryDial(t, r.URL, "C", tc.mod)
			if err == nil || errors.Is(err, peer.ErrConnect) {
				t.Fatalf("got %v, want a config error", err)
			}
		})
	}
}

func TestTokenSentInAuthAndQuery(t *testing.T) {
	r := start(t, server.Config{})
	type seen struct{ auth, query any }
	got := make(chan seen, 1)
	r.IO.Sockets().Use(func(s *sio.Socket, next func(*sio.ExtendedError)) {
		q, _ := s.Request().Query().Gets("token")
		select {
		case got <- seen{s.Handshake().Auth["token"], strings.Join(q, ",")}:
		default:
		}
		next(nil)
	})
	dial(t, r.URL, "A", func(c *peer.Config) { c.Token = "t0ken" })
	s := <-got
	if s.auth != "t0ken" || s.query != "t0ken" {
		t.Fatalf("token: auth %v, query %v", s.auth, s.query)
	}
}

func TestKickedPeerStops(t *testing.T) {
	r := start(t, server.Config{})
	a := dial(t, r.URL, "A")
	if err := r.Relay.Kick("A"); err != nil {
		t.Fatal(err)
	}
	n := a.notice(t, peer.Closed)
	if protocol.CodeOf(n.Err) != protocol.CodeKicked {
		t.Fatalf("closed: %v, want KICKED", n.Err)
	}
	select {
	case <-a.Done():
	case <-time.After(testkit.Wait):
		t.Fatal("Done not closed")
	}
	if protocol.CodeOf(a.Err()) != protocol.CodeKicked {
		t.Fatalf("Err() = %v", a.Err())
	}
}

func TestWrapsCallersSocket(t *testing.T) {
	r := start(t, server.Config{})
	raw := testkit.DialWith(t, r.URL, testkit.DialOptions{Query: url.Values{protocol.QueryClientID: {"W"}}})
	events := make(chan peer.Event, 4)
	w, err := peer.New(raw.Socket, peer.Config{ID: "W", OnEvent: func(ev peer.Event) { events <- ev }})
	if err != nil {
		t.Fatal(err)
	}
	b := dial(t, r.URL, "B")
	if err := w.Pair(context.Background(), "B"); err != nil {
		t.Fatalf("pair: %v", err)
	}
	if err := b.Emit(context.Background(), "to-w", "x"); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		if ev.Name != "to-w" || ev.From != "B" {
			t.Fatalf("W got %q from %q", ev.Name, ev.From)
		}
	case <-time.After(testkit.Wait):
		t.Fatal("no event")
	}
	_ = w.Close()
	<-w.Done()
	if !raw.Socket.Connected() {
		t.Fatal("Close disconnected the caller's socket")
	}
	if err := w.Emit(context.Background(), "x"); !errors.Is(err, peer.ErrClosed) {
		t.Fatalf("emit after close: %v", err)
	}
	if _, err := peer.New(nil, peer.Config{ID: "W"}); err == nil {
		t.Fatal("New(nil) succeeded")
	}
	if _, err := peer.New(raw.Socket, peer.Config{ID: strings.Repeat("x", 200)}); err == nil {
		t.Fatal("New with a bad id succeeded")
	}
}

// TestWaitForTarget: with Config.WaitForTarget, Pair waits while the
// target is offline or busy, and pairs once it is free; a wait that
// outlasts its context says what it waited for; a refusal ends it.
func TestWaitForTarget(t *testing.T) {
	r, events := startWatched(t, socketio.ServiceConfig{Relay: server.Config{PairRate: server.Unlimited}})
	a := dial(t, r.URL, "A", func(c *peer.Config) { c.WaitForTarget = true })
	ctx := context.Background()

	// Offline until the wait ends.
	err := a.Pair(ctxTimeout(t, 200*time.Millisecond), "LATE")
	if !isTimeout(err) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "OFFLINE") {
		t.Fatalf("pair with an absent target: %v, want a timeout naming OFFLINE", err)
	}

	// Offline, then online.
	res := make(chan error, 1)
	go func() { res <- a.Pair(ctxTimeout(t, testkit.Wait), "LATE") }()
	refusal(t, events, "A", protocol.CodeOffline)
	late := dial(t, r.URL, "LATE")
	if err := <-res; err != nil {
		t.Fatalf("waiting for LATE: %v", err)
	}
	if got, _ := late.Peer.Peer(); got != "A" {
		t.Fatalf("LATE paired with %q", got)
	}
	if err := a.Unpair(ctx); err != nil {
		t.Fatal(err)
	}

	// Busy, then free.
	x := dial(t, r.URL, "X")
	c := dial(t, r.URL, "C")
	pair(t, c, x)
	go func() { res <- a.Pair(ctxTimeout(t, testkit.Wait), "X") }()
	refusal(t, events, "A", protocol.CodeBusy)
	if err := c.Unpair(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-res; err != nil {
		t.Fatalf("waiting for X: %v", err)
	}
	if err := a.Unpair(ctx); err != nil {
		t.Fatal(err)
	}

	// A refusal does not wait.
	dial(t, r.URL, "NO", func(c *peer.Config) { c.Accept = peer.AcceptNone() })
	if err := a.Pair(ctx, "NO"); !errors.Is(err, peer.ErrRefused) {
		t.Fatalf("pair with a refusing target: %v", err)
	}
}

// TestCloseFreesTheID: a device that closes and connects again at once
// with the same id, over and over, is let in every time.
func TestCloseFreesTheID(t *testing.T) {
	r := start(t, server.Config{PairRate: server.Unlimited})
	b := dial(t, r.URL, "B")
	for i := range 20 {
		a, err := peer.Dial(context.Background(), peer.Config{URL: r.URL, ID: "A", Timeout: testkit.Wait})
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if err := a.Pair(context.Background(), "B"); err != nil {
			t.Fatalf("round %d: pair: %v", i, err)
		}
		_ = a.Close()
		if n := b.notice(t, peer.Unpaired); n.Peer != "A" {
			t.Fatalf("round %d: B %+v", i, n)
		}
	}
}

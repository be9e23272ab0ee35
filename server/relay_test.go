package server_test

import (
	"log/slog"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/p2prelay/p2prelay/internal/testkit"
	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server"
	"github.com/p2prelay/p2prelay/server/socketio"
)

func start(t *testing.T, cfg server.Config) *testkit.Relay {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return testkit.StartRelay(t, socketio.ServiceConfig{Relay: cfg})
}

func TestConnectNeedsAValidID(t *testing.T) {
	r := start(t, server.Config{})
	cases := []struct {
		name  string
		query url.Values
		code  string
	}{
		{"no id", url.Values{}, "BAD_ID"},
		{"empty clientId", url.Values{"clientId": {""}}, "BAD_ID"},
		{"empty deviceId", url.Values{"deviceId": {""}}, "BAD_ID"},
		{"too long", url.Values{"clientId": {strings.Repeat("x", 129)}}, "BAD_ID"},
		{"control character", url.Values{"clientId": {"a\nb"}}, "BAD_ID"},
		{"ids disagree", url.Values{"clientId": {"a"}, "deviceId": {"b"}}, "BAD_ID"},
		{"repeated differently", url.Values{"clientId": {"a", "b"}}, "BAD_ID"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := testkit.TryDial(t, r.URL, testkit.DialOptions{Query: tc.query})
			if err == nil {
				t.Fatal("connected, want refusal")
			}
			if !strings.HasPrefix(err.Error(), tc.code+":") {
				t.Fatalf("connect error %q, want prefix %s:", err, tc.code)
			}
		})
	}
	// The longest id and a unicode id are fine.
	testkit.Dial(t, r.URL, strings.Repeat("é", 128))
	testkit.DialGen1(t, r.URL, "设备-1")
	if got := r.Relay.DeviceIDs(); len(got) != 2 {
		t.Fatalf("devices %v, want 2", got)
	}
}

func TestDuplicateIDRejected(t *testing.T) {
	r := start(t, server.Config{})
	testkit.Dial(t, r.URL, "A")
	_, err := testkit.TryDial(t, r.URL, testkit.DialOptions{Query: url.Values{"clientId": {"A"}}})
	if err == nil || !strings.HasPrefix(err.Error(), "ID_IN_USE:") {
		t.Fatalf("second A: %v, want ID_IN_USE", err)
	}
}

func TestPairRelayAndDisconnect(t *testing.T) {
	r := start(t, server.Config{})
	a := testkit.Dial(t, r.URL, "A")
	b := testkit.Dial(t, r.URL, "B")
	testkit.Pair(t, a, b, "B", "A")

	a.Emit(protocol.EventEmit, map[string]any{"targetClientId": "B", "event": "hello", "args": []any{"x", 1.0, map[string]any{"k": true}}})
	ev := b.Next("hello")
	if want := []any{"x", 1.0, map[string]any{"k": true}}; !reflect.DeepEqual(ev.Args, want) {
		t.Fatalf("B got %v, want %v", ev.Args, want)
	}

	// With an ack piped back, values unchanged and in order.
	res := make(chan []any, 1)
	go func() {
		res <- b.Request(protocol.EventEmitAck, map[string]any{"targetClientId": "A", "event": "q", "args": []any{2.0}})
	}()
	q := a.Next("q")
	if q.Ack == nil || !reflect.DeepEqual(q.Args, []any{2.0}) {
		t.Fatalf("A got q %v ack=%v", q.Args, q.Ack != nil)
	}
	q.Ack("r1", nil, []any{3.0})
	if got, want := <-res, []any{"r1", nil, []any{3.0}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ack %v, want %v", got, want)
	}

	pairs := r.Relay.Pairs()
	if len(pairs) != 1 || pairs[0].A != "A" || pairs[0].B != "B" || pairs[0].Messages != 2 {
		t.Fatalf("pairs %+v", pairs)
	}

	a.Close()
	b.Next(protocol.EventDisconnect)
	waitFor(t, func() bool { return len(r.Relay.Pairs()) == 0 && len(r.Relay.DeviceIDs()) == 1 })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testkit.Wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestGen1TargetAnswersByEvent(t *testing.T) {
	r := start(t, server.Config{})
	a := testkit.Dial(t, r.URL, "A")
	g := testkit.DialGen1(t, r.URL, "G")

	res := make(chan []any, 1)
	go func() { res <- a.Request(protocol.EventRegister, "G") }()
	ask := g.Next(protocol.EventRegister)
	if ask.Ack == nil || ask.Args[0] != "A" {
		t.Fatalf("gen1 target asked with %v ack=%v", ask.Args, ask.Ack != nil)
	}
	g.Emit(protocol.EventRegisterFailed)
	if v := <-res; v[0] != false {
		t.Fatalf("refused pairing answered %v", v)
	}
	if e := a.ServerError(); e.Code != protocol.CodeRefused {
		t.Fatalf("SERVER_ERROR %v, want REFUSED", e)
	}

	go func() { res <- a.Request(protocol.EventRegister, "G") }()
	g.Next(protocol.EventRegister)
	g.Emit(protocol.EventRegisterSuccess)
	if v := <-res; v[0] != true {
		t.Fatalf("accepted pairing answered %v", v)
	}
	// A gen-1 device relays with targetDeviceId.
	g.Emit(protocol.EventEmit, map[string]any{"targetDeviceId": "A", "event": "ping", "args": []any{}})
	if ev := a.Next("ping"); len(ev.Args) != 0 {
		t.Fatalf("ping args %v", ev.Args)
	}
}

func TestGen2TargetRefusesThroughAck(t *testing.T) {
	r := start(t, server.Config{})
	a := testkit.Dial(t, r.URL, "A")
	b := testkit.Dial(t, r.URL, "B")
	res := make(chan []any, 1)
	go func() { res <- a.Request(protocol.EventRegister, "B") }()
	b.Next(protocol.EventRegister).Ack(false)
	if v := <-res; v[0] != false {
		t.Fatalf("answered %v, want false", v)
	}
	if e := a.ServerError(); e.Code != protocol.CodeRefused {
		t.Fatalf("got %v, want REFUSED", e)
	}
	if ps := r.Relay.Pairs(); len(ps) != 0 {
		t.Fatalf("pairs %v after refusal", ps)
	}
}

func TestPairingRefusedAtOnce(t *testing.T) {
	r := start(t, server.Config{})
	a := testkit.Dial(t, r.URL, "A")
	b := testkit.Dial(t, r.URL, "B")
	c := testkit.Dial(t, r.URL, "C")
	d := testkit.Dial(t, r.URL, "D")
	testkit.Pair(t, a, b, "B", "A")

	cases := []struct {
		dev    *testkit.Device
		target any
		code   protocol.Code
	}{
		{c, "nobody", protocol.CodeOffline},
		{c, "C", protocol.CodeSelf},
		{c, "A", protocol.CodeBusy}, // target paired with someone else
		{a, "C", protocol.CodeBusy}, // source paired with someone else
		{c, 42.0, protocol.CodeBadRequest},
		{c, "", protocol.CodeBadID},
		{c, nil, protocol.CodeBadRequest},
	}
	for _, tc := range cases {
		v := tc.dev.Request(protocol.EventRegister, tc.target)
		if len(v) != 2 || v[0] != false {
			t.Fatalf("register %v answered %v, want [false, error]", tc.target, v)
		}
		if e := protocol.ParseAckError(v[1:]); e == nil || e.Code != tc.code {
			t.Fatalf("register %v: ack error %v, want %s", tc.target, v[1], tc.code)
		}
		if e := tc.dev.ServerError(); e.Code != tc.code {
			t.Fatalf("register %v: %v, want %s", tc.target, e, tc.code)
		}
	}
	// Re-registering with the current peer answers true without asking.
	if v := a.Request(protocol.EventRegister, "B"); v[0] != true {
		t.Fatalf("re-register answered %v", v)
	}
	b.NoEvent(protocol.EventRegister, 100*time.Millisecond)
	// Nobody else noticed: C and D can still pair.
	testkit.Pair(t, c, d, "D", "C")
}

func TestPairingTimeout(t *testing.T) {
	r := start(t, server.Config{PairTimeout: 150 * time.Millisecond})
	a := testkit.Dial(t, r.URL, "A")
	b := testkit.Dial(t, r.URL, "B")
	if v := a.Request(protocol.EventRegister, "B"); v[0] != false {
		t.Fatalf("unanswered pairing answered %v", v)
	}
	if e := a.ServerError(); e.Code != protocol.CodeTimeout {
		t.Fatalf("got %v, want TIMEOUT", e)
	}
	// B answers yes too late: it is told the pair did not form.
	b.Next(protocol.EventRegister).Ack(true)
	b.Next(protocol.EventDisconnect)
	if ps := r.Relay.Pairs(); len(ps) != 0 {
		t.Fatalf("pairs %v", ps)
	}
	// Both are free again.
	testkit.Pair(t, b, a, "A", "B")
}

func TestTargetDropsMidHandshake(t *testing.T) {
	r := start(t, server.Config{})
	a := testkit.Dial(t, r.URL, "A")
	b := testkit.Dial(t, r.URL, "B")
	res := make(chan []any, 1)
	go func() { res <- a.Request(protocol.EventRegister, "B") }()
	b.Next(protocol.EventRegister)
	b.Close()
	if v := <-res; v[0] != false {
		t.Fatalf("answered %v", v)
	}
	if e := a.ServerError(); e.Code != protocol.CodeOffline {
		t.Fatalf("got %v, want OFFLINE", e)
	}
	d, _ := r.Relay.Store().Get("A")
	if !d.Available() {
		t.Fatalf("A still busy: %+v", d)
	}
}

func TestUnregister(t *testing.T) {
	r := start(t, server.Config{})
	a := testkit.Dial(t, r.URL, "A")
	b := testkit.Dial(t, r.URL, "B")
	g := testkit.DialGen1(t, r.URL, "G")
	testkit.Pair(t, a, b, "B", "A")

	if v := a.Request(protocol.EventUnregister); len(v) != 1 || v[0] != true {
		t.Fatalf("unregister answered %v", v)
	}
	ev := b.Next(protocol.EventUnregister)
	if ev.Ack == nil {
		t.Fatal("P2P_UNREGISTER to the peer came without an ack callback")
	}
	ev.Ack()
	if ps := r.Relay.Pairs(); len(ps) != 0 {
		t.Fatalf("pairs %v", ps)
	}
	// Not paired: refused, ack still answered.
	if v := a.Request(protocol.EventUnregister); v[0] != false {
		t.Fatalf("unregister when free answered %v", v)
	}
	if e := a.ServerError(); e.Code != protocol.CodeNotPaired {
		t.Fatalf("got %v", e)
	}
	// A generation-1 peer is told in its own words: P2P_DISCONNECT.
	res := make(chan []any, 1)
	go func() { res <- a.Request(protocol.EventRegister, "G") }()
	g.Next(protocol.EventRegister)
	g.Emit(protocol.EventRegisterSuccess)
	<-res
	a.Request(protocol.EventUnregister)
	g.Next(protocol.EventDisconnect)
	g.NoEvent(protocol.EventUnregister, 100*time.Millisecond)
}

func TestRelayRefusals(t *testing.T) {
	r := start(t, server.Config{})
	a := testkit.Dial(t, r.URL, "A")
	b := testkit.Dial(t, r.URL, "B")
	c := testkit.Dial(t, r.URL, "C")
	testkit.Pair(t, a, b, "B", "A")

	bad := []struct {
		name    string
		payload any
		code    protocol.Code
	}{
		{"to a non-peer", map[string]any{"targetClientId": "C", "event": "x"}, protocol.CodeNotPaired},
		{"to an offline device", map[string]any{"targetClientId": "Z", "event": "x"}, protocol.CodeNotPaired},
		{"to self", map[string]any{"targetClientId": "A", "event": "x"}, protocol.CodeNotPaired},
		{"reserved P2P_ name", map[string]any{"targetClientId": "B", "event": "P2P_DISCONNECT"}, protocol.CodeReservedEvent},
		{"reserved socket.io name", map[string]any{"targetClientId": "B", "event": "disconnect"}, protocol.CodeReservedEvent},
		{"SERVER_ERROR", map[string]any{"targetClientId": "B", "event": "SERVER_ERROR"}, protocol.CodeReservedEvent},
		{"empty event", map[string]any{"targetClientId": "B", "event": ""}, protocol.CodeBadRequest},
		{"huge event", map[string]any{"targetClientId": "B", "event": strings.Repeat("e", 300)}, protocol.CodeBadRequest},
		{"event not a string", map[string]any{"targetClientId": "B", "event": 7.0}, protocol.CodeBadRequest},
		{"no target", map[string]any{"event": "x"}, protocol.CodeBadRequest},
		{"target not a string", map[string]any{"targetClientId": []any{"B"}, "event": "x"}, protocol.CodeBadRequest},
		{"targets disagree", map[string]any{"targetClientId": "B", "targetDeviceId": "C", "event": "x"}, protocol.CodeBadRequest},
		{"args not an array", map[string]any{"targetClientId": "B", "event": "x", "args": "abc"}, protocol.CodeBadRequest},
		{"args an object", map[string]any{"targetClientId": "B", "event": "x", "args": map[string]any{}}, protocol.CodeBadRequest},
		{"payload null", nil, protocol.CodeBadRequest},
		{"payload a string", "B", protocol.CodeBadRequest},
		{"payload an array", []any{"B", "x"}, protocol.CodeBadRequest},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			a.Emit(protocol.EventEmit, tc.payload)
			if e := a.ServerError(); e.Code != tc.code {
				t.Fatalf("P2P_EMIT: %v, want %s", e, tc.code)
			}
			v := a.Request(protocol.EventEmitAck, tc.payload)
			got := protocol.ParseAckError(v)
			if got == nil || got.Code != tc.code {
				t.Fatalf("P2P_EMIT_ACKNOWLEDGE ack %v, want error %s", v, tc.code)
			}
			if e := a.ServerError(); e.Code != tc.code {
				t.Fatalf("P2P_EMIT_ACKNOWLEDGE: %v, want %s", e, tc.code)
			}
		})
	}
	// No payload at all.
	a.Emit(protocol.EventEmit)
	if e := a.ServerError(); e.Code != protocol.CodeBadRequest {
		t.Fatalf("empty P2P_EMIT: %v", e)
	}
	// An ack is needed and missing.
	a.Emit(protocol.EventEmitAck, map[string]any{"targetClientId": "B", "event": "x"})
	if e := a.ServerError(); e.Code != protocol.CodeBadRequest {
		t.Fatalf("P2P_EMIT_ACKNOWLEDGE without ack: %v", e)
	}
	a.Emit(protocol.EventRegister, "C")
	if e := a.ServerError(); e.Code != protocol.CodeBadRequest {
		t.Fatalf("P2P_REGISTER without ack: %v", e)
	}
	a.Emit(protocol.EventListClients)
	if e := a.ServerError(); e.Code != protocol.CodeBadRequest {
		t.Fatalf("LIST_CLIENTS without ack: %v", e)
	}
	// An unknown event, with and without an ack.
	a.Emit("whatever", 1)
	if e := a.ServerError(); e.Code != protocol.CodeUnknownEvent {
		t.Fatalf("unknown event: %v", e)
	}
	if got := protocol.ParseAckError(a.Request("whatever")); got == nil || got.Code != protocol.CodeUnknownEvent {
		t.Fatalf("unknown event with ack: %v", got)
	}
	// An ack on P2P_EMIT, which needs none, is answered once relayed.
	if v := a.Request(protocol.EventEmit, map[string]any{"targetClientId": "B", "event": "x"}); len(v) != 0 {
		t.Fatalf("P2P_EMIT ack answered %v, want no values", v)
	}
	b.Next("x")
	// B saw none of the bad requests, and the pair still works both ways.
	for _, name := range b.Names() {
		t.Errorf("B received %s", name)
	}
	b.Emit(protocol.EventEmit, map[string]any{"targetClientId": "A", "event": "still", "args": []any{"here"}})
	a.Next("still")
	c.NoEvent("x", 50*time.Millisecond)
	if st := r.Relay.Stats(); st.Refusals[protocol.CodeNotPaired] == 0 || st.Refusals[protocol.CodeReservedEvent] == 0 {
		t.Fatalf("refusals not counted: %+v", st.Refusals)
	}
}

func TestAckTimeoutAndPeerDropMidAck(t *testing.T) {
	r := start(t, server.Config{AckTimeout: 150 * time.Millisecond})
	a := testkit.Dial(t, r.URL, "A")
	b := testkit.Dial(t, r.URL, "B")
	testkit.Pair(t, a, b, "B", "A")

	v := a.Request(protocol.EventEmitAck, map[string]any{"targetClientId": "B", "event": "slow"})
	if e := protocol.ParseAckError(v); e == nil || e.Code != protocol.CodeTimeout {
		t.Fatalf("ack %v, want TIMEOUT error", v)
	}
	a.ServerError()
	late := b.Next("slow")
	late.Ack("too late") // ignored: already answered

	res := make(chan []any, 1)
	go func() {
		res <- a.Request(protocol.EventEmitAck, map[string]any{"targetClientId": "B", "event": "never"})
	}()
	b.Next("never")
	b.Close()
	v = <-res
	if e := protocol.ParseAckError(v); e == nil || e.Code != protocol.CodeOffline {
		t.Fatalf("ack %v, want OFFLINE error", v)
	}
	a.Next(protocol.EventDisconnect)
}

func TestAckAnsweredTwiceCountsOnce(t *testing.T) {
	r := start(t, server.Config{})
	a := testkit.Dial(t, r.URL, "A")
	b := testkit.Dial(t, r.URL, "B")
	testkit.Pair(t, a, b, "B", "A")
	res := make(chan []any, 2)
	go func() { res <- a.Request(protocol.EventEmitAck, map[string]any{"targetClientId": "B", "event": "q"}) }()
	ev := b.Next("q")
	ev.Ack(1)
	ev.Ack(2)
	if v := <-res; !reflect.DeepEqual(v, []any{1.0}) {
		t.Fatalf("ack %v", v)
	}
	select {
	case v := <-res:
		t.Fatalf("second ack delivered: %v", v)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestListings(t *testing.T) {
	r := start(t, server.Config{})
	a := testkit.Dial(t, r.URL, "A")
	b := testkit.Dial(t, r.URL, "B")
	testkit.Dial(t, r.URL, "C")
	testkit.Pair(t, a, b, "B", "A")

	if v := a.Request(protocol.EventListClients); !reflect.DeepEqual(v, []any{[]any{"A", "B", "C"}}) {
		t.Fatalf("LIST_CLIENTS %v", v)
	}
	all := a.Request(protocol.EventListDevices)
	want := []any{[]any{
		map[string]any{"id": "A", "available": false},
		map[string]any{"id": "B", "available": false},
		map[string]any{"id": "C", "available": true},
	}}
	if !reflect.DeepEqual(all, want) {
		t.Fatalf("P2P_LIST_DEVICES %v", all)
	}
	avail := a.Request(protocol.EventListDevices, map[string]any{"available": true})
	if !reflect.DeepEqual(avail, []any{[]any{map[string]any{"id": "C", "available": true}}}) {
		t.Fatalf("available %v", avail)
	}
	if e := protocol.ParseAckError(a.Request(protocol.EventListDevices, "all")); e == nil || e.Code != protocol.CodeBadRequest {
		t.Fatalf("bad listing query: %v", e)
	}
}

func TestBinaryArgumentsRelayed(t *testing.T) {
	r := start(t, server.Config{})
	a := testkit.Dial(t, r.URL, "A")
	b := testkit.Dial(t, r.URL, "B")
	testkit.Pair(t, a, b, "B", "A")
	blob := []byte{0, 1, 2, 255}
	res := make(chan []any, 1)
	go func() {
		res <- a.Request(protocol.EventEmitAck, map[string]any{"targetClientId": "B", "event": "bin", "args": []any{blob, map[string]any{"inner": blob}}})
	}()
	ev := b.Next("bin")
	if got := bytesOf(t, ev.Args[0]); !reflect.DeepEqual(got, blob) {
		t.Fatalf("binary arg %v", got)
	}
	inner := ev.Args[1].(map[string]any)["inner"]
	if got := bytesOf(t, inner); !reflect.DeepEqual(got, blob) {
		t.Fatalf("nested binary %v", got)
	}
	ev.Ack([]byte("back"))
	v := <-res
	if got := bytesOf(t, v[0]); string(got) != "back" {
		t.Fatalf("binary ack %q", got)
	}
}

func bytesOf(t *testing.T, v any) []byte {
	t.Helper()
	switch b := v.(type) {
	case []byte:
		return b
	case interface{ Bytes() []byte }:
		return b.Bytes()
	}
	t.Fatalf("%T is not binary", v)
	return nil
}

func TestTakeoverPolicy(t *testing.T) {
	r := start(t, server.Config{DuplicateID: server.DuplicateTakeover})
	a1 := testkit.Dial(t, r.URL, "A")
	b := testkit.Dial(t, r.URL, "B")
	testkit.Pair(t, a1, b, "B", "A")
	a2 := testkit.Dial(t, r.URL, "A")
	if e := a1.ServerError(); e.Code != protocol.CodeTakenOver {
		t.Fatalf("old connection told %v", e)
	}
	select {
	case <-a1.Closed():
	case <-time.After(testkit.Wait):
		t.Fatal("old connection not closed")
	}
	b.Next(protocol.EventDisconnect)
	if ps := r.Relay.Pairs(); len(ps) != 0 {
		t.Fatalf("pairs %v", ps)
	}
	testkit.Pair(t, a2, b, "B", "A")
	if got := r.Relay.DeviceIDs(); !reflect.DeepEqual(got, []string{"A", "B"}) {
		t.Fatalf("devices %v", got)
	}
}

func TestOperatorKickAndBreak(t *testing.T) {
	r := start(t, server.Config{})
	a := testkit.Dial(t, r.URL, "A")
	b := testkit.Dial(t, r.URL, "B")
	g := testkit.DialGen1(t, r.URL, "G")
	testkit.Pair(t, a, b, "B", "A")

	if _, err := r.Relay.Unpair("B"); err != nil {
		t.Fatal(err)
	}
	a.Next(protocol.EventUnregister)
	b.Next(protocol.EventUnregister)
	if _, err := r.Relay.Unpair("B"); protocol.CodeOf(err) != protocol.CodeNotPaired {
		t.Fatalf("second break: %v", err)
	}

	res := make(chan []any, 1)
	go func() { res <- a.Request(protocol.EventRegister, "G") }()
	g.Next(protocol.EventRegister)
	g.Emit(protocol.EventRegisterSuccess)
	<-res
	if _, err := r.Relay.Unpair("A"); err != nil {
		t.Fatal(err)
	}
	g.Next(protocol.EventDisconnect) // generation 1 only knows P2P_DISCONNECT
	a.Next(protocol.EventUnregister)

	testkit.Pair(t, a, b, "B", "A")
	if err := r.Relay.Kick("A"); err != nil {
		t.Fatal(err)
	}
	if e := a.ServerError(); e.Code != protocol.CodeKicked {
		t.Fatalf("kicked device told %v", e)
	}
	b.Next(protocol.EventDisconnect)
	select {
	case <-a.Closed():
	case <-time.After(testkit.Wait):
		t.Fatal("kicked device still connected")
	}
	if err := r.Relay.Kick("A"); protocol.CodeOf(err) != protocol.CodeOffline {
		t.Fatalf("kick again: %v", err)
	}
}

func TestShutdownTellsPairedDevices(t *testing.T) {
	r := start(t, server.Config{})
	a := testkit.Dial(t, r.URL, "A")
	b := testkit.Dial(t, r.URL, "B")
	testkit.Pair(t, a, b, "B", "A")
	go func() { _ = r.Service.Shutdown(t.Context()) }()
	a.Next(protocol.EventDisconnect)
	b.Next(protocol.EventDisconnect)
	for _, d := range []*testkit.Device{a, b} {
		select {
		case <-d.Closed():
		case <-time.After(testkit.Wait):
			t.Fatal("device still connected after shutdown")
		}
	}
}

func TestGen1LateYesIsToldDisconnect(t *testing.T) {
	r := start(t, server.Config{PairTimeout: 150 * time.Millisecond})
	a := testkit.Dial(t, r.URL, "A")
	g := testkit.DialGen1(t, r.URL, "G")
	if v := a.Request(protocol.EventRegister, "G"); v[0] != false {
		t.Fatalf("answered %v", v)
	}
	g.Next(protocol.EventRegister)
	g.Emit(protocol.EventRegisterSuccess)
	g.Next(protocol.EventDisconnect)
	// A device that is paired is not told anything for a stray "yes".
	testkit.Pair(t, g, a, "A", "G")
	g.Emit(protocol.EventRegisterSuccess)
	g.NoEvent(protocol.EventDisconnect, 100*time.Millisecond)
}

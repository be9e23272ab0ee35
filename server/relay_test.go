package server_test

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/p2prelay/p2prelay/internal/testkit"
	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server"
)

func start(t *testing.T, cfg server.Config) *testkit.Relay {
	t.Helper()
	return testkit.StartRelay(t, server.ServiceConfig{Relay: cfg})
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
	go func() { res <- b.Request(protocol.EventEmitAck, map[string]any{"targetClientId": "A", "event": "q", "args": []any{2.0}}) }()
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

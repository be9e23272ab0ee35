package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	engine "github.com/zishang520/socket.io/clients/engine/v3"
	client "github.com/zishang520/socket.io/clients/socket/v3"
	sio "github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/p2prelay/p2prelay/admin"
	"github.com/p2prelay/p2prelay/admin/adminapi"
	"github.com/p2prelay/p2prelay/admin/adminclient"
	"github.com/p2prelay/p2prelay/admin/admintest"
	"github.com/p2prelay/p2prelay/internal/sioclient"
	"github.com/p2prelay/p2prelay/internal/testkit"
	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server"
)

const token = "p2pa_integration-token-42"

type env struct {
	relay  *testkit.Relay
	hub    *admin.Hub
	client *adminclient.Client
}

// start runs a relay with the admin side mounted as p2pd mounts it.
func start(t *testing.T, cfg admin.Config) *env {
	t.Helper()
	cfg.Token = token
	a := admintest.Start(t, cfg)
	return &env{relay: a.Relay, hub: a.Hub, client: newClient(t, a.URL, token)}
}

func newClient(t *testing.T, url, tok string) *adminclient.Client {
	t.Helper()
	c, err := adminclient.NewClient(adminclient.ClientConfig{URL: url, Token: tok, Timeout: testkit.Wait, RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

func subscribe(t *testing.T, c *adminclient.Client) *adminclient.Subscription {
	t.Helper()
	sub := c.Subscribe(context.Background())
	t.Cleanup(sub.Close)
	return sub
}

// next returns the next update that is not a bare status change.
func next(t *testing.T, sub *adminclient.Subscription) adminapi.Update {
	t.Helper()
	return nextFrom(t, sub.Updates())
}

func nextFrom(t *testing.T, updates <-chan adminapi.Update) adminapi.Update {
	t.Helper()
	timeout := time.After(testkit.Wait)
	for {
		select {
		case u, ok := <-updates:
			if !ok {
				t.Fatal("subscription closed")
			}
			if u.Snapshot != nil || len(u.Deltas) > 0 {
				return u
			}
			if u.Status != adminapi.StatusConnecting && u.Status != adminapi.StatusLive {
				t.Fatalf("subscription %s: %v", u.Status, u.Err)
			}
		case <-timeout:
			t.Fatal("no update from the admin stream")
		}
	}
}

// collector applies a subscription's updates to a State, checking order.
type collector struct {
	t       *testing.T
	updates <-chan adminapi.Update
	state   *adminapi.State
	seen    []adminapi.Delta // every non-stats delta, in order
	snaps   int
}

func collect(t *testing.T, sub *adminclient.Subscription) *collector {
	t.Helper()
	u := next(t, sub)
	if u.Snapshot == nil {
		t.Fatalf("first update is not a snapshot: %+v", u)
	}
	return &collector{t: t, updates: sub.Updates(), state: adminapi.NewState(u.Snapshot), snaps: 1}
}

// keepUp makes the subscriber take every update as it comes, whatever the
// test does meanwhile; until still applies them in order.
func (c *collector) keepUp() {
	in := c.updates
	buf := make(chan adminapi.Update, 100000)
	go func() {
		for u := range in {
			buf <- u
		}
	}()
	c.updates = buf
}

// until applies updates until cond holds.
func (c *collector) until(what string, cond func(*adminapi.State) bool) {
	c.t.Helper()
	deadline := time.Now().Add(testkit.Wait)
	for !cond(c.state) {
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out waiting for %s; seen %v", what, kinds(c.seen))
		}
		u := nextFrom(c.t, c.updates)
		if u.Snapshot != nil {
			c.snaps++
			c.state.Reset(u.Snapshot)
		}
		for _, d := range u.Deltas {
			if d.Seq != c.state.Seq+1 {
				c.t.Fatalf("delta %+v does not follow %d", d, c.state.Seq)
			}
			c.state.Apply(d)
			if d.Kind != adminapi.KindStats {
				c.seen = append(c.seen, d)
			}
		}
	}
}

func kinds(ds []adminapi.Delta) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = fmt.Sprintf("%d:%s:%s", d.Seq, d.Kind, d.ID)
	}
	return out
}

func hasDevice(id string) func(*adminapi.State) bool {
	return func(s *adminapi.State) bool { return s.Devices[id] != nil }
}

func TestSnapshotThenDeltasInOrder(t *testing.T) {
	e := start(t, admin.Config{StatsInterval: time.Hour})
	a := testkit.Dial(t, e.relay.URL, "A")
	b := testkit.Dial(t, e.relay.URL, "B")
	testkit.Pair(t, a, b, "B", "A")

	c := collect(t, subscribe(t, e.client))
	if len(c.state.Devices) != 2 || c.state.Pairs["A"] == nil || c.state.Pairs["A"].B != "B" {
		t.Fatalf("snapshot devices %v pairs %v", c.state.Devices, c.state.Pairs)
	}
	if d := c.state.Devices["A"]; d.Peer != "B" || d.Available || d.Transport == "" || d.Address == "" || d.Generation != "gen2" {
		t.Fatalf("snapshot device A = %+v", d)
	}

	cdev := testkit.Dial(t, e.relay.URL, "C")
	gen1 := testkit.DialGen1(t, e.relay.URL, "D")
	c.until("C and D", func(s *adminapi.State) bool { return s.Devices["C"] != nil && s.Devices["D"] != nil })
	if d := c.state.Devices["D"]; d.Generation != "gen1" || d.EngineIO != 4 || !d.Available {
		t.Fatalf("device D = %+v", d)
	}

	// A refused pairing: C asks A, who is busy.
	if got := cdev.Request(protocol.EventRegister, "A"); len(got) != 2 || got[0] != false {
		t.Fatalf("register = %v", got)
	}
	// A unregisters, then D leaves.
	a.Request(protocol.EventUnregister)
	gen1.Close()
	c.until("the pair ended and D gone", func(s *adminapi.State) bool { return len(s.Pairs) == 0 && s.Devices["D"] == nil })

	want := []string{"device_connected:C", "device_connected:D", "pair_refused:C", "pair_ended:A", "device_disconnected:D"}
	var got []string
	for _, d := range c.seen {
		got = append(got, string(d.Kind)+":"+d.ID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("deltas %v, want %v", got, want)
	}
	if r := c.seen[2]; r.Peer != "A" || r.Code != "BUSY" {
		t.Fatalf("pair_refused = %+v", r)
	}
	if r := c.seen[3]; r.Peer != "B" || r.Reason != server.ReasonUnregister {
		t.Fatalf("pair_ended = %+v", r)
	}
	for i := 1; i < len(c.seen); i++ {
		if c.seen[i].Seq <= c.seen[i-1].Seq {
			t.Fatalf("sequence not increasing: %v", kinds(c.seen))
		}
	}
	// The subscriber's state is the relay's.
	assertSameState(t, c.state, e)
}

func assertSameState(t *testing.T, s *adminapi.State, e *env) {
	t.Helper()
	want, err := e.client.State(context.Background())
	if err != nil {
		t.Fatalf("State: %v", err)
	}
	got := s.Snapshot()
	ids := func(ds []adminapi.Device) (out []string) {
		for _, d := range ds {
			out = append(out, fmt.Sprintf("%s peer=%s available=%v", d.ID, d.Peer, d.Available))
		}
		return out
	}
	pairs := func(ps []adminapi.Pair) (out []string) {
		for _, p := range ps {
			out = append(out, p.A+"-"+p.B)
		}
		return out
	}
	if !slices.Equal(ids(got.Devices), ids(want.Devices)) || !slices.Equal(pairs(got.Pairs), pairs(want.Pairs)) {
		t.Fatalf("stream state %v %v, relay state %v %v", ids(got.Devices), pairs(got.Pairs), ids(want.Devices), pairs(want.Pairs))
	}
}

func TestSnapshotCoherentUnderChurn(t *testing.T) {
	e := start(t, admin.Config{StatsInterval: time.Hour})
	halfway := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 60; i++ {
			if i == 20 {
				close(halfway)
			}
			d, err := testkit.TryDial(t, e.relay.URL, testkit.DialOptions{Query: url.Values{protocol.QueryClientID: {fmt.Sprintf("churn%d", i%5)}}})
			if err == nil && i%2 == 0 {
				d.Close()
			}
		}
	}()
	// Subscribing in the middle of the churn must still converge.
	<-halfway
	c := collect(t, subscribe(t, e.client))
	<-done
	final := e.hub.Seq()
	c.until("the last delta", func(s *adminapi.State) bool { return s.Seq >= final })
	assertSameState(t, c.state, e)
}

func TestSlowSubscriberIsResyncedAndNeverDelaysTheRelay(t *testing.T) {
	e := start(t, admin.Config{Buffer: 32, Batch: 16, StatsInterval: time.Hour})
	a := testkit.Dial(t, e.relay.URL, "A")
	b := testkit.Dial(t, e.relay.URL, "B")
	testkit.Pair(t, a, b, "B", "A")

	// A subscriber that takes its snapshot and then does not answer.
	slow, err := dialAdmin(t, e.relay.URL, map[string]any{"token": token})
	if err != nil {
		t.Fatalf("dial admin: %v", err)
	}
	first := slow.next(t, adminapi.EventSnapshot)
	// A well-behaved subscriber next to it.
	good := collect(t, subscribe(t, e.client))
	good.keepUp()

	// Many events (refused pairings) and relayed messages while the slow
	// one sits on its ack: none of it may wait for it.
	// (Several devices: the relay limits each one's pairing requests.)
	for i := 0; i < 25; i++ {
		lonely := testkit.Dial(t, e.relay.URL, fmt.Sprintf("lonely%d", i))
		for j := 0; j < 4; j++ {
			if got := lonely.Request(protocol.EventRegister, fmt.Sprintf("nobody%d", j)); got[0] != false {
				t.Fatalf("register = %v", got)
			}
		}
	}
	go func() {
		for {
			ev, ok := b.Await("ping", testkit.Wait)
			if !ok {
				return
			}
			ev.Ack("pong")
		}
	}()
	for i := 0; i < 100; i++ {
		got := a.Request(protocol.EventEmitAck, map[string]any{"targetClientId": "B", "event": "ping", "args": []any{i}})
		if len(got) != 1 || got[0] != "pong" {
			t.Fatalf("relayed ack %d = %v", i, got)
		}
	}
	final := e.hub.Seq()
	good.until("every refusal", func(s *adminapi.State) bool { return s.Seq >= final })
	if good.snaps != 1 {
		t.Fatalf("the subscriber that kept up was resynced %d times; %s", good.snaps-1, grep(metrics(t, e, token), "resyncs"))
	}

	// The slow subscriber answers at last: it gets a fresh snapshot, not
	// the deltas it missed.
	first.ack(nil, nil)
	ev := slow.next(t, adminapi.EventSnapshot)
	var snap adminapi.Snapshot
	raw, _ := json.Marshal(ev.args[0])
	if err := json.Unmarshal(raw, &snap); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	if snap.Seq < final {
		t.Fatalf("resync snapshot at %d, want at least %d", snap.Seq, final)
	}
	if names := slow.names(); slices.Contains(names, adminapi.EventDeltas) {
		t.Fatalf("slow subscriber got stale deltas: %v", names)
	}
	if m := metrics(t, e, token); !strings.Contains(m, "p2pd_admin_resyncs_total 1\n") {
		t.Fatalf("resync not counted:\n%s", grep(m, "resyncs"))
	}
}

func TestWrongTokenRefusedOnEverySurface(t *testing.T) {
	// Every wrong token here comes from 127.0.0.1: a budget that lasts
	// (TestWrongTokensAreThrottled tests the budget).
	e := start(t, admin.Config{StatsInterval: time.Hour, AuthFailureBurst: 1000})
	deviceJWT := "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJBIn0.c2ln"

	for name, auth := range map[string]map[string]any{
		"missing":      nil,
		"wrong":        {"token": "p2pa_not-the-token-at-all"},
		"prefix":       {"token": token[:len(token)-1]},
		"not a string": {"token": 42},
		"device token": {"token": deviceJWT},
	} {
		t.Run("socket "+name, func(t *testing.T) {
			_, err := dialAdmin(t, e.relay.URL, auth)
			if err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED") {
				t.Fatalf("connect = %v, want UNAUTHORIZED", err)
			}
		})
	}
	for name, header := range map[string]string{
		"missing": "", "wrong": "Bearer p2pa_not-the-token-at-all", "basic": "Basic " + token,
		"device token": "Bearer " + deviceJWT, "empty bearer": "Bearer ",
	} {
		for _, path := range []string{admin.PathState, admin.PathMetrics} {
			t.Run("http "+path+" "+name, func(t *testing.T) {
				resp := get(t, e.relay.URL+path, header)
				if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.body, `"UNAUTHORIZED"`) {
					t.Fatalf("GET %s = %d %s, want 401 UNAUTHORIZED", path, resp.StatusCode, resp.body)
				}
				if resp.Header.Get("WWW-Authenticate") == "" {
					t.Fatal("401 without WWW-Authenticate")
				}
			})
		}
	}
	for name, header := range map[string]string{"missing": "", "wrong": "Bearer p2pa_not-the-token-at-all", "device token": "Bearer " + deviceJWT} {
		t.Run("http command "+name, func(t *testing.T) {
			victim := "victim-" + strings.ReplaceAll(name, " ", "-")
			d := testkit.Dial(t, e.relay.URL, victim)
			resp := post(t, e.relay.URL+"/admin/v1/devices/"+victim+"/kick", header)
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.body, `"UNAUTHORIZED"`) {
				t.Fatalf("POST kick = %d %s, want 401", resp.StatusCode, resp.body)
			}
			d.NoEvent(protocol.EventServerError, 50*time.Millisecond)
			if _, ok := e.relay.Relay.SocketID(victim); !ok {
				t.Fatal("a refused kick kicked")
			}
		})
	}
	t.Run("client", func(t *testing.T) {
		bad := newClient(t, e.relay.URL, "p2pa_not-the-token-at-all")
		if _, err := bad.State(context.Background()); protocol.CodeOf(err) != protocol.CodeUnauthorized {
			t.Fatalf("State = %v, want UNAUTHORIZED", err)
		}
		if err := bad.Kick(context.Background(), "A"); protocol.CodeOf(err) != protocol.CodeUnauthorized {
			t.Fatalf("Kick = %v, want UNAUTHORIZED", err)
		}
		sub := bad.Subscribe(context.Background())
		defer sub.Close()
		for u := range sub.Updates() {
			if u.Snapshot != nil || u.Status == adminapi.StatusLive {
				t.Fatal("a wrong token got the stream")
			}
			if u.Status == adminapi.StatusUnauthorized {
				if protocol.CodeOf(u.Err) != protocol.CodeUnauthorized {
					t.Fatalf("unauthorized update with %v", u.Err)
				}
				break
			}
		}
	})
	t.Run("admin token is no device credential", func(t *testing.T) {
		// A device that presents the admin token gets no admin powers: it
		// is an ordinary device on "/", and sees no admin stream.
		d := testkit.DialWith(t, e.relay.URL, testkit.DialOptions{Query: url.Values{protocol.QueryClientID: {"dev"}}, Auth: map[string]any{"token": token}})
		d.Emit(adminapi.CommandKick, "dev")
		if perr := d.ServerError(); perr.Code != protocol.CodeUnknownEvent {
			t.Fatalf("kick from a device: %v, want UNKNOWN_EVENT", perr)
		}
		d.NoEvent(adminapi.EventSnapshot, 100*time.Millisecond)
	})
	if m := metrics(t, e, token); !strings.Contains(m, `p2pd_admin_auth_failures_total{surface="socket"}`) || strings.Contains(m, `p2pd_admin_auth_failures_total{surface="http"} 0`) {
		t.Fatalf("auth failures not counted:\n%s", grep(m, "auth_failures"))
	}
}

func TestCommandsShowInTheStream(t *testing.T) {
	e := start(t, admin.Config{StatsInterval: time.Hour})
	a := testkit.Dial(t, e.relay.URL, "A")
	b := testkit.Dial(t, e.relay.URL, "B")
	testkit.Pair(t, a, b, "B", "A")
	sub := subscribe(t, e.client)
	c := collect(t, sub)
	ctx := context.Background()

	if err := sub.Unpair(ctx, "B"); err != nil {
		t.Fatalf("Unpair: %v", err)
	}
	a.Next(protocol.EventUnregister)
	if err := e.client.Unpair(ctx, "B"); protocol.CodeOf(err) != protocol.CodeNotPaired {
		t.Fatalf("second Unpair = %v, want NOT_PAIRED", err)
	}
	if err := e.client.Kick(ctx, "A"); err != nil {
		t.Fatalf("Kick: %v", err)
	}
	select {
	case <-a.Closed():
	case <-time.After(testkit.Wait):
		t.Fatal("kicked device still connected")
	}
	if err := sub.Kick(ctx, "A"); protocol.CodeOf(err) != protocol.CodeOffline {
		t.Fatalf("Kick of a gone device = %v, want OFFLINE", err)
	}
	if err := sub.Kick(ctx, ""); protocol.CodeOf(err) != protocol.CodeBadID {
		t.Fatalf("Kick(\"\") = %v, want BAD_ID", err)
	}
	want := []string{
		"pair_ended:A:" + server.ReasonBroken, "command:B:unpair", "command:B:unpairNOT_PAIRED",
		"device_disconnected:A:kicked", "command:A:kick", "command:A:kickOFFLINE",
	}
	c.until("A gone", func(s *adminapi.State) bool { return s.Devices["A"] == nil && len(c.seen) >= len(want) })
	var got []string
	for _, d := range c.seen {
		got = append(got, fmt.Sprintf("%s:%s:%s%s%s", d.Kind, d.ID, d.Command, d.Reason, d.Code))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("stream %v, want %v", got, want)
	}
	if by := c.seen[1].By; !strings.HasPrefix(by, "127.0.0.1") {
		t.Fatalf("command by %q, want the operator's address", by)
	}
}

func TestHTTPCommands(t *testing.T) {
	e := start(t, admin.Config{StatsInterval: time.Hour})
	a := testkit.Dial(t, e.relay.URL, "A")
	b := testkit.Dial(t, e.relay.URL, "B")
	testkit.Dial(t, e.relay.URL, "odd/id ü")
	testkit.Pair(t, a, b, "B", "A")
	auth := "Bearer " + token
	for _, tc := range []struct {
		path   string
		status int
		body   string
	}{
		{"/admin/v1/devices/B/unpair", http.StatusOK, `{"ok":true}`},
		{"/admin/v1/devices/B/unpair", http.StatusConflict, `"NOT_PAIRED"`},
		{"/admin/v1/devices/" + url.PathEscape("odd/id ü") + "/kick", http.StatusOK, `{"ok":true}`},
		{"/admin/v1/devices/nobody/kick", http.StatusNotFound, `"OFFLINE"`},
		{"/admin/v1/devices/A/reboot", http.StatusBadRequest, `"BAD_REQUEST"`},
		{"/admin/v1/devices/%01/kick", http.StatusBadRequest, `"BAD_ID"`},
	} {
		resp := post(t, e.relay.URL+tc.path, auth)
		if resp.StatusCode != tc.status || !strings.Contains(resp.body, tc.body) {
			t.Errorf("POST %s = %d %s, want %d %s", tc.path, resp.StatusCode, resp.body, tc.status, tc.body)
		}
	}
	if resp := get(t, e.relay.URL+"/admin/v1/devices/A/kick", auth); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET kick = %d, want 405", resp.StatusCode)
	}
	a.Next(protocol.EventUnregister)
	snap := e.hub.Snapshot()
	if len(snap.Pairs) != 0 || len(snap.Devices) != 2 {
		t.Fatalf("after the commands: %+v", snap)
	}
	if err := e.client.Kick(context.Background(), "nobody"); protocol.CodeOf(err) != protocol.CodeOffline {
		t.Fatalf("client Kick(nobody) = %v, want OFFLINE", err)
	}
}

func TestStateJSONShape(t *testing.T) {
	e := start(t, admin.Config{StatsInterval: time.Hour})
	a := testkit.Dial(t, e.relay.URL, "A")
	b := testkit.Dial(t, e.relay.URL, "B")
	testkit.Dial(t, e.relay.URL, "C")
	testkit.Pair(t, a, b, "B", "A")
	a.Emit(protocol.EventEmit, map[string]any{"targetClientId": "B", "event": "hi", "args": []any{1}})
	b.Next("hi")

	resp := get(t, e.relay.URL+admin.PathState, "Bearer "+token)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET state = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var raw struct {
		Devices []map[string]any `json:"devices"`
		Pairs   []map[string]any `json:"pairs"`
		Stats   map[string]any   `json:"stats"`
	}
	if err := json.Unmarshal([]byte(resp.body), &raw); err != nil {
		t.Fatalf("decode %s: %v", resp.body, err)
	}
	if len(raw.Devices) != 3 || len(raw.Pairs) != 1 || raw.Stats == nil {
		t.Fatalf("state %s", resp.body)
	}
	for _, d := range raw.Devices {
		for key, kind := range map[string]string{"id": "string", "available": "bool", "peer": "string", "connected_at": "string", "address": "string", "transport": "string"} {
			if got := fmt.Sprintf("%T", d[key]); got != kind {
				t.Fatalf("device %v: %s is %s, want %s", d, key, got, kind)
			}
		}
	}
	want := map[string]map[string]any{"A": {"available": false, "peer": "B"}, "C": {"available": true, "peer": ""}}
	for _, d := range raw.Devices {
		if w, ok := want[d["id"].(string)]; ok && (d["available"] != w["available"] || d["peer"] != w["peer"]) {
			t.Fatalf("device %v, want %v", d, w)
		}
	}
	p := raw.Pairs[0]
	if p["a"] != "A" || p["b"] != "B" || p["messages"] != float64(1) || p["since"] == nil {
		t.Fatalf("pair %v", p)
	}
	if raw.Stats["messages"] != float64(1) || raw.Stats["devices"] != float64(3) {
		t.Fatalf("stats %v", raw.Stats)
	}
	if resp := post(t, e.relay.URL+admin.PathState, "Bearer "+token); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST state = %d, want 405", resp.StatusCode)
	}
}

func TestStatsTicksCarryRatesAndPairMessages(t *testing.T) {
	e := start(t, admin.Config{StatsInterval: 20 * time.Millisecond})
	a := testkit.Dial(t, e.relay.URL, "A")
	b := testkit.Dial(t, e.relay.URL, "B")
	testkit.Pair(t, a, b, "B", "A")
	c := collect(t, subscribe(t, e.client))
	for i := 0; i < 5; i++ {
		a.Emit(protocol.EventEmit, map[string]any{"targetClientId": "B", "event": "hi", "args": []any{i}})
		b.Next("hi")
	}
	c.until("five messages counted", func(s *adminapi.State) bool {
		return s.Stats.Messages == 5 && s.Pairs["A"] != nil && s.Pairs["A"].Messages == 5
	})
	if c.state.Stats.Subscribers != 1 || c.state.Stats.Devices != 2 || c.state.Stats.Pairs != 1 {
		t.Fatalf("stats %+v", c.state.Stats)
	}
}

func TestMetrics(t *testing.T) {
	e := start(t, admin.Config{StatsInterval: time.Hour})
	a := testkit.Dial(t, e.relay.URL, "A")
	b := testkit.Dial(t, e.relay.URL, "B")
	testkit.Pair(t, a, b, "B", "A")
	testkit.Dial(t, e.relay.URL, "C")
	if got := a.Request(protocol.EventRegister, "C"); got[0] != false {
		t.Fatalf("register = %v", got)
	}
	if perr := a.ServerError(); perr.Code != protocol.CodeBusy {
		t.Fatalf("refusal %v, want BUSY", perr)
	}
	subscribe(t, e.client)
	m := metrics(t, e, token)
	for _, line := range []string{
		"p2pd_devices 3", "p2pd_pairs 1", "p2pd_relayed_messages_total 0", "p2pd_relayed_acks_total 0",
		`p2pd_refusals_total{code="BUSY"} 1`, `p2pd_pairing_outcomes_total{outcome="paired"} 1`,
		`p2pd_pairing_outcomes_total{outcome="BUSY"} 1`, "p2pd_admin_subscribers ", "go_goroutines ",
	} {
		if !strings.Contains(m, line) {
			t.Errorf("metrics lack %q", line)
		}
	}
}

func TestMetricsOpen(t *testing.T) {
	e := start(t, admin.Config{StatsInterval: time.Hour, MetricsOpen: true})
	if resp := get(t, e.relay.URL+admin.PathMetrics, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("open metrics = %d", resp.StatusCode)
	}
	if resp := get(t, e.relay.URL+admin.PathState, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("state without token = %d, want 401", resp.StatusCode)
	}
}

func TestSubscriptionReconnects(t *testing.T) {
	e := start(t, admin.Config{StatsInterval: time.Hour})
	sub := subscribe(t, e.client)
	next(t, sub)
	// Drop every admin connection from the relay's side.
	e.relay.IO.Of(admin.NamespaceName, nil).DisconnectSockets(true)
	sawDown := false
	timeout := time.After(testkit.Wait)
	for {
		select {
		case u := <-sub.Updates():
			if u.Status == adminapi.StatusDown {
				sawDown = true
				if !errors.Is(u.Err, adminclient.ErrUnreachable) {
					t.Fatalf("down with %v", u.Err)
				}
			}
			if u.Snapshot != nil {
				if !sawDown {
					t.Fatal("snapshot without a drop first")
				}
				return
			}
		case <-timeout:
			t.Fatal("no resubscription")
		}
	}
}

func TestClientUnreachable(t *testing.T) {
	c := newClient(t, "http://127.0.0.1:1", token)
	if _, err := c.State(context.Background()); !errors.Is(err, adminclient.ErrUnreachable) {
		t.Fatalf("State = %v, want ErrUnreachable", err)
	}
	if err := c.Kick(context.Background(), "A"); !errors.Is(err, adminclient.ErrUnreachable) {
		t.Fatalf("Kick = %v, want ErrUnreachable", err)
	}
	for _, bad := range []string{"", "127.0.0.1:9000", "ftp://x", "http://"} {
		if _, err := adminclient.NewClient(adminclient.ClientConfig{URL: bad, Token: token}); err == nil {
			t.Errorf("NewClient(%q) accepted", bad)
		}
	}
	if _, err := adminclient.NewClient(adminclient.ClientConfig{URL: "http://127.0.0.1:1"}); protocol.CodeOf(err) != protocol.CodeUnauthorized {
		t.Errorf("NewClient without token = %v", err)
	}
}

type response struct {
	*http.Response
	body string
}

func get(t *testing.T, url, auth string) response {
	t.Helper()
	return request(t, http.MethodGet, url, auth)
}

func post(t *testing.T, url, auth string) response {
	t.Helper()
	return request(t, http.MethodPost, url, auth)
}

// request sends a request with an Authorization header (none when auth is
// empty) and reads the whole answer.
func request(t *testing.T, method, url, auth string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp, string(b)}
}

func metrics(t *testing.T, e *env, tok string) string {
	t.Helper()
	resp := get(t, e.relay.URL+admin.PathMetrics, "Bearer "+tok)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d %s", resp.StatusCode, resp.body)
	}
	return resp.body
}

func grep(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// rawAdmin is a raw socket.io connection to the admin namespace that does
// nothing by itself: tests answer (or withhold) its acks by hand.
type rawAdmin struct {
	mu     sync.Mutex // guards queue
	queue  []rawEvent
	notify chan struct{}
}

type rawEvent struct {
	name string
	args []any
	ack  sio.Ack
}

// dialAdmin connects to /admin with the given handshake auth (and a device
// id in the query, which must not matter). It returns the relay's refusal
// as an error.
func dialAdmin(t *testing.T, relayURL string, auth map[string]any) (*rawAdmin, error) {
	t.Helper()
	r := &rawAdmin{notify: make(chan struct{}, 1)}
	opts := client.DefaultOptions()
	opts.SetQuery(url.Values{protocol.QueryClientID: {"sneaky"}})
	if auth != nil {
		opts.SetAuth(auth)
	}
	opts.SetTransports(types.NewSet[engine.TransportCtor](client.WebSocket))
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Wait)
	defer cancel()
	s, err := sioclient.Connect(ctx, relayURL, sioclient.Options{Client: opts, Namespace: admin.NamespaceName, Setup: func(s *client.Socket) {
		s.OnAny(func(args ...any) {
			ev := rawEvent{}
			ev.name, _ = args[0].(string)
			ev.args, ev.ack = protocol.SplitAck(args[1:])
			r.mu.Lock()
			r.queue = append(r.queue, ev)
			r.mu.Unlock()
			select {
			case r.notify <- struct{}{}:
			default:
			}
		})
	}})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { s.Close() })
	return r, nil
}

// next waits for the next event named name; other events stay queued.
func (r *rawAdmin) next(t *testing.T, name string) rawEvent {
	t.Helper()
	deadline := time.After(testkit.Wait)
	for {
		r.mu.Lock()
		for i, ev := range r.queue {
			if ev.name == name {
				r.queue = append(r.queue[:i], r.queue[i+1:]...)
				r.mu.Unlock()
				return ev
			}
		}
		r.mu.Unlock()
		select {
		case <-r.notify:
		case <-deadline:
			t.Fatalf("no %s event; queued %v", name, r.names())
		}
	}
}

func (r *rawAdmin) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.queue))
	for i, ev := range r.queue {
		out[i] = ev.name
	}
	return out
}

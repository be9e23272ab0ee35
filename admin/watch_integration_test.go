package admin_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2prelay/p2prelay/admin"
	"github.com/p2prelay/p2prelay/admin/adminapi"
	"github.com/p2prelay/p2prelay/admin/adminclient"
	"github.com/p2prelay/p2prelay/internal/testkit"
	"github.com/p2prelay/p2prelay/protocol"
)

// eventually waits until cond holds, checking whenever the hub may have
// changed (at most every few milliseconds), or fails after testkit.Wait.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(testkit.Wait)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// watchUpdates reads a subscription's details and traffic of device id.
type watchUpdates struct {
	t       *testing.T
	updates <-chan adminapi.Update
}

func (w watchUpdates) detail(id string, ok func(*adminapi.DeviceDetail) bool) *adminapi.DeviceDetail {
	w.t.Helper()
	timeout := time.After(testkit.Wait)
	for {
		select {
		case u := <-w.updates:
			if u.Detail != nil && u.Detail.ID == id && ok(u.Detail) {
				return u.Detail
			}
		case <-timeout:
			w.t.Fatalf("no such detail of %s", id)
		}
	}
}

// traffic collects traffic until it has one matching each of wants.
func (w watchUpdates) traffic(wants ...func(adminapi.Traffic) bool) []adminapi.Traffic {
	w.t.Helper()
	var got []adminapi.Traffic
	timeout := time.After(testkit.Wait)
	for len(wants) > 0 {
		select {
		case u := <-w.updates:
			if u.Traffic == nil {
				continue
			}
			for _, tr := range u.Traffic.Traffic {
				got = append(got, tr)
				if i := slices.IndexFunc(wants, func(f func(adminapi.Traffic) bool) bool { return f(tr) }); i >= 0 {
					wants = slices.Delete(wants, i, i+1)
				}
			}
		case <-timeout:
			w.t.Fatalf("traffic %+v lacks %d wanted", got, len(wants))
		}
	}
	return got
}

// TestWatchADeviceOverTheStream: a subscriber watching a device gets its
// detail and a tail of its traffic (names and sizes, acks with their round
// trip, refusals); the relay's watch ends when it unwatches, and when its
// connection ends.
func TestWatchADeviceOverTheStream(t *testing.T) {
	e := start(t, admin.Config{StatsInterval: 50 * time.Millisecond})
	a := testkit.Dial(t, e.relay.URL, "A")
	b := testkit.Dial(t, e.relay.URL, "B")
	testkit.Pair(t, a, b, "B", "A")
	sub := subscribe(t, e.client)
	next(t, sub)
	w := watchUpdates{t, sub.Updates()}

	ctx := context.Background()
	if err := sub.Watch(ctx, "A"); err != nil {
		t.Fatalf("Watch: %v", err)
	}
	det := w.detail("A", func(d *adminapi.DeviceDetail) bool { return d.Watched })
	if det.Peer != "B" || det.Offline || det.Transport != "websocket" || det.TokenSubject != "" {
		t.Fatalf("detail %+v", det)
	}
	if got := e.hub.Watched(); !slices.Equal(got, []string{"A"}) {
		t.Fatalf("watched %v", got)
	}

	a.Emit(protocol.EventEmit, map[string]any{protocol.KeyTargetClientID: "B", "event": "hello", "args": []any{"12345"}})
	b.Next("hello")
	answered := make(chan error, 1)
	go func() {
		_, err := a.TryRequest(protocol.EventEmitAck, map[string]any{protocol.KeyTargetClientID: "B", "event": "ping", "args": []any{1}})
		answered <- err
	}()
	b.Next("ping").Ack("pong")
	if err := <-answered; err != nil {
		t.Fatal(err)
	}
	a.Emit(protocol.EventEmit, map[string]any{protocol.KeyTargetClientID: "B", "event": "P2P_EMIT"})
	a.ServerError()
	w.traffic(
		func(tr adminapi.Traffic) bool {
			return tr.ID == "A" && tr.Dir == adminapi.DirIn && tr.Event == "hello" && tr.Size > 0 && !tr.Ack
		},
		func(tr adminapi.Traffic) bool { return tr.Dir == adminapi.DirIn && tr.Event == "ping" && !tr.Ack },
		func(tr adminapi.Traffic) bool {
			return tr.Dir == adminapi.DirOut && tr.Event == "ping" && tr.Ack && tr.RTT > 0
		},
		func(tr adminapi.Traffic) bool {
			return tr.Code == string(protocol.CodeReservedEvent) && tr.Reason != ""
		},
	)
	det = w.detail("A", func(d *adminapi.DeviceDetail) bool { return d.MessagesIn == 2 })
	if det.BytesIn == 0 || det.RefusalsByCode["RESERVED_EVENT"] != 1 || det.Refusals != 1 || det.AcksAwaited != 0 {
		t.Fatalf("detail after the traffic %+v", det)
	}

	if err := sub.Unwatch(ctx, "A"); err != nil {
		t.Fatalf("Unwatch: %v", err)
	}
	if got := e.hub.Watched(); len(got) != 0 {
		t.Fatalf("watched %v after unwatch", got)
	}
	if d, ok := e.relay.Relay.Detail("A"); !ok || d.Watched {
		t.Fatalf("the relay still watches A: %+v", d)
	}

	// A second watcher, then both leave without unwatching.
	if err := sub.Watch(ctx, "A"); err != nil {
		t.Fatal(err)
	}
	other := subscribe(t, e.client)
	next(t, other)
	if err := other.Watch(ctx, "B"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "A and B watched", func() bool { return slices.Equal(e.hub.Watched(), []string{"A", "B"}) })
	sub.Close()
	eventually(t, "A's watch to end with its watcher", func() bool { return slices.Equal(e.hub.Watched(), []string{"B"}) })
	other.Close()
	eventually(t, "no watch left", func() bool { return len(e.hub.Watched()) == 0 })
	if d, ok := e.relay.Relay.Detail("B"); !ok || d.Watched {
		t.Fatalf("the relay still watches B: %+v", d)
	}
}

// TestWatchSurvivesTheDevicesReconnection: a device that drops and comes
// back is watched again on its new connection.
func TestWatchSurvivesTheDevicesReconnection(t *testing.T) {
	e := start(t, admin.Config{StatsInterval: time.Hour})
	sub := subscribe(t, e.client)
	next(t, sub)
	w := watchUpdates{t, sub.Updates()}
	if err := sub.Watch(context.Background(), "C"); err != nil {
		t.Fatal(err)
	}
	w.detail("C", func(d *adminapi.DeviceDetail) bool { return d.Offline })
	c := testkit.Dial(t, e.relay.URL, "C")
	w.detail("C", func(d *adminapi.DeviceDetail) bool { return d.Watched })
	c.Close()
	w.detail("C", func(d *adminapi.DeviceDetail) bool { return d.Offline })
	c = testkit.Dial(t, e.relay.URL, "C")
	w.detail("C", func(d *adminapi.DeviceDetail) bool { return d.Watched })
	c.Emit(protocol.EventEmit, map[string]any{protocol.KeyTargetClientID: "X", "event": "e"})
	w.traffic(func(tr adminapi.Traffic) bool { return tr.ID == "C" && tr.Code == string(protocol.CodeNotPaired) })
}

func TestDeviceEndpoint(t *testing.T) {
	e := start(t, admin.Config{StatsInterval: time.Hour})
	testkit.Dial(t, e.relay.URL, "kiosk-1")
	det, err := e.client.Device(context.Background(), "kiosk-1")
	if err != nil || det.ID != "kiosk-1" || det.Transport != "websocket" || det.RefusalsByCode == nil || det.Time.IsZero() {
		t.Fatalf("Device = %+v, %v", det, err)
	}
	if _, err := e.client.Device(context.Background(), "ghost"); protocol.CodeOf(err) != protocol.CodeOffline {
		t.Fatalf("Device(ghost) = %v, want OFFLINE", err)
	}
	for path, want := range map[string]int{
		"/admin/v1/devices/ghost": http.StatusNotFound, "/admin/v1/devices/kiosk-1": http.StatusOK,
		"/admin/v1/devices/" + strings.Repeat("x", 200): http.StatusBadRequest,
	} {
		if resp := get(t, e.relay.URL+path, "Bearer "+token); resp.StatusCode != want {
			t.Errorf("GET %s = %d %s, want %d", path, resp.StatusCode, resp.body, want)
		}
		if resp := get(t, e.relay.URL+path, "Bearer p2pa_wrong-token-0000"); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong token = %d", path, resp.StatusCode)
		}
	}
}

// syncLog is a log destination tests read while the hub writes.
type syncLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *syncLog) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), `msg="`+msg+`"`)
}

// TestWrongTokensAreThrottled: past its budget an address is refused
// RATE_LIMITED on every surface, even with the right token, until the
// budget refills; the refusals are counted and logged aggregated.
func TestWrongTokensAreThrottled(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Unix(1_000_000, 0).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	var logs syncLog
	e := start(t, admin.Config{StatsInterval: time.Hour, AuthFailureBurst: 5, AuthFailureRate: 1, Now: now,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})

	const wrong = "Bearer p2pa_not-the-token-at-all"
	for i := range 5 {
		if resp := get(t, e.relay.URL+admin.PathState, wrong); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: %d, want 401 within the budget", i, resp.StatusCode)
		}
	}
	for range 200 { // as fast as they come: each answered at once, unchecked
		resp := get(t, e.relay.URL+admin.PathState, wrong)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" || !strings.Contains(resp.body, `"RATE_LIMITED"`) {
			t.Fatalf("past the budget: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), resp.body)
		}
	}
	if resp := get(t, e.relay.URL+admin.PathState, "Bearer "+token); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("the right token while throttled: %d, want 429", resp.StatusCode)
	}
	if _, err := dialAdmin(t, e.relay.URL, map[string]any{"token": token}); err == nil || !strings.Contains(err.Error(), "RATE_LIMITED") {
		t.Fatalf("socket while throttled: %v", err)
	}
	bad, err := adminclient.NewClient(adminclient.ClientConfig{URL: e.relay.URL, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.State(context.Background()); protocol.CodeOf(err) != protocol.CodeRateLimited {
		t.Fatalf("client while throttled: %v", err)
	}

	clock.Add(int64(time.Second)) // one more attempt's worth
	if resp := get(t, e.relay.URL+admin.PathState, "Bearer "+token); resp.StatusCode != http.StatusOK {
		t.Fatalf("the right token after the refill: %d %s", resp.StatusCode, resp.body)
	}
	if _, err := dialAdmin(t, e.relay.URL, map[string]any{"token": "p2pa_wrong-again-000000"}); err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED") {
		t.Fatalf("socket, wrong token after the refill: %v", err)
	}
	if _, err := dialAdmin(t, e.relay.URL, map[string]any{"token": "p2pa_wrong-again-000000"}); err == nil || !strings.Contains(err.Error(), "RATE_LIMITED") {
		t.Fatalf("socket, past the budget again: %v", err)
	}

	if n := logs.count("admin token refused"); n != 1 {
		t.Fatalf("%d log lines for 200+ refusals within %s, want 1", n, "10s")
	}
	clock.Add(int64(time.Minute))
	m := metrics(t, e, token)
	for _, line := range []string{`p2pd_admin_auth_failures_total{surface="http"} 5`, `p2pd_admin_auth_failures_total{surface="socket"} 1`,
		`p2pd_admin_auth_throttled_total{surface="http"} 202`, `p2pd_admin_auth_throttled_total{surface="socket"} 2`} {
		if !strings.Contains(m, line) {
			t.Errorf("metrics lack %q:\n%s", line, grep(m, "admin_auth"))
		}
	}
}

package admin

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/p2prelay/p2prelay/admin/adminapi"
	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server"
)

const wait = 5 * time.Second

const testToken = "p2pa_test-token-0123456789"

// fakeSource is a relay with a fixed state.
type fakeSource struct {
	devices []server.DeviceInfo
	pairs   []server.PairInfo
	stats   server.Stats
	kicked  chan string

	mu      sync.Mutex // guards details and watches
	details map[string]server.DeviceDetail
	watches map[string]func(server.Traffic)
}

func (f *fakeSource) Detail(id string) (server.DeviceDetail, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.details[id]
	if ok {
		_, d.Watched = f.watches[id]
	}
	return d, ok
}

func (f *fakeSource) Watch(id string, _ int, fn func(server.Traffic)) (func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.details[id]; !ok {
		return nil, protocol.Errorf(protocol.CodeOffline, "device %q is not connected", id)
	}
	if f.watches == nil {
		f.watches = map[string]func(server.Traffic){}
	}
	f.watches[id] = fn
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.watches, id)
	}, nil
}

// setDevice puts a device on the fake relay (nil: takes it off).
func (f *fakeSource) setDevice(id string, d *server.DeviceDetail) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.details == nil {
		f.details = map[string]server.DeviceDetail{}
	}
	if d == nil {
		delete(f.details, id)
		delete(f.watches, id) // the relay's watch ends with the device
		return
	}
	d.ID = id
	f.details[id] = *d
}

// tap reports traffic of device id, as the relay does to its watch; it
// reports whether the device was watched.
func (f *fakeSource) tap(id string, t server.Traffic) bool {
	f.mu.Lock()
	fn := f.watches[id]
	f.mu.Unlock()
	if fn == nil {
		return false
	}
	t.ID = id
	fn(t)
	return true
}

func (f *fakeSource) watched() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for id := range f.watches {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func (f *fakeSource) Devices() []server.DeviceInfo { return f.devices }
func (f *fakeSource) Pairs() []server.PairInfo     { return f.pairs }
func (f *fakeSource) Stats() server.Stats          { return f.stats }
func (f *fakeSource) Kick(id string) error {
	if id == "ghost" {
		return protocol.Errorf(protocol.CodeOffline, "device %q is not connected", id)
	}
	if f.kicked != nil {
		f.kicked <- id
	}
	return nil
}
func (f *fakeSource) Unpair(id string) (server.Pair, error) {
	return server.Pair{}, protocol.Errorf(protocol.CodeNotPaired, "device %q is not paired", id)
}

func newTestHub(t testing.TB, cfg Config) *Hub {
	t.Helper()
	if cfg.Token == "" {
		cfg.Token = testToken
	}
	if cfg.StatsInterval == 0 {
		cfg.StatsInterval = time.Hour // tests publish by hand
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.Start(&fakeSource{})
	t.Cleanup(h.Close)
	return h
}

// chanSink records a stream; each call blocks until release has a token
// when gated.
type chanSink struct {
	snaps    chan *adminapi.Snapshot
	deltasC  chan []adminapi.Delta
	details  chan *adminapi.DeviceDetail
	traffics chan *adminapi.TrafficBatch
	gate     chan struct{} // nil: never block
}

func newChanSink(gated bool) *chanSink {
	k := &chanSink{snaps: make(chan *adminapi.Snapshot, 100), deltasC: make(chan []adminapi.Delta, 10000),
		details: make(chan *adminapi.DeviceDetail, 1000), traffics: make(chan *adminapi.TrafficBatch, 1000)}
	if gated {
		k.gate = make(chan struct{})
	}
	return k
}

func (k *chanSink) pass(ctx context.Context) error {
	if k.gate == nil {
		return nil
	}
	select {
	case <-k.gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (k *chanSink) snapshot(ctx context.Context, s *adminapi.Snapshot) error {
	k.snaps <- s
	return k.pass(ctx)
}

func (k *chanSink) deltas(ctx context.Context, ds []adminapi.Delta) error {
	k.deltasC <- ds
	return k.pass(ctx)
}

func (k *chanSink) detail(ctx context.Context, det *adminapi.DeviceDetail) error {
	k.details <- det
	return k.pass(ctx)
}

func (k *chanSink) traffic(ctx context.Context, b *adminapi.TrafficBatch) error {
	k.traffics <- b
	return k.pass(ctx)
}

func runStream(t *testing.T, h *Hub, k sink) *subscriber {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sub := h.subscribe()
	done := make(chan error, 1)
	go func() { done <- h.stream(ctx, sub, k) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) && !errors.Is(err, errHubClosed) {
				t.Errorf("stream ended with %v", err)
			}
		case <-time.After(wait):
			t.Errorf("stream did not end")
		}
		h.unsubscribe(sub)
	})
	return sub
}

func refusal(i int) server.Event {
	return server.Event{Kind: server.PairRefused, ID: fmt.Sprintf("d%d", i), Peer: "x", Code: protocol.CodeOffline}
}

func recvSnapshot(t *testing.T, k *chanSink) *adminapi.Snapshot {
	t.Helper()
	select {
	case s := <-k.snaps:
		return s
	case <-time.After(wait):
		t.Fatal("no snapshot")
	}
	return nil
}

func TestStreamSnapshotThenContiguousDeltas(t *testing.T) {
	h := newTestHub(t, Config{})
	h.OnEvent(refusal(0)) // before the subscriber: covered by the snapshot
	k := newChanSink(false)
	runStream(t, h, k)
	snap := recvSnapshot(t, k)
	if snap.Seq != 1 {
		t.Fatalf("snapshot seq %d, want 1", snap.Seq)
	}
	for i := 1; i <= 50; i++ {
		h.OnEvent(refusal(i))
	}
	next := snap.Seq + 1
	for next <= 51 {
		select {
		case ds := <-k.deltasC:
			for _, d := range ds {
				if d.Seq != next {
					t.Fatalf("delta seq %d, want %d", d.Seq, next)
				}
				if want := fmt.Sprintf("d%d", next-1); d.ID != want || d.Kind != adminapi.KindPairRefused || d.Code != "OFFLINE" {
					t.Fatalf("delta %d = %+v, want a refusal of %s", d.Seq, d, want)
				}
				next++
			}
		case <-time.After(wait):
			t.Fatalf("deltas stopped at %d", next)
		}
	}
}

func TestPublishNeverBlocksOnAStuckSubscriber(t *testing.T) {
	h := newTestHub(t, Config{Buffer: 4})
	sub := h.subscribe() // nobody reads it
	defer h.unsubscribe(sub)
	h.resync(sub)
	for i := 0; i < 10000; i++ {
		h.OnEvent(refusal(i))
	}
	if !sub.stale.Load() {
		t.Fatal("an overflowing subscriber is not marked for resync")
	}
	if got := h.resyncs.Load(); got != 1 {
		t.Fatalf("resyncs = %d, want 1 (marked once until it resyncs)", got)
	}
	if h.Seq() != 10000 {
		t.Fatalf("seq = %d, want 10000", h.Seq())
	}
}

func TestSlowSubscriberIsResynced(t *testing.T) {
	h := newTestHub(t, Config{Buffer: 8, Batch: 4})
	k := newChanSink(true)
	runStream(t, h, k)
	first := recvSnapshot(t, k) // the stream now waits for the ack
	for i := 0; i < 100; i++ {
		h.OnEvent(refusal(i)) // far more than the buffer holds
	}
	k.gate <- struct{}{} // ack the first snapshot
	second := recvSnapshot(t, k)
	if second.Seq != first.Seq+100 {
		t.Fatalf("resync snapshot seq %d, want %d", second.Seq, first.Seq+100)
	}
	close(k.gate) // from now on the subscriber keeps up
	h.OnEvent(refusal(100))
	select {
	case ds := <-k.deltasC:
		if len(ds) != 1 || ds[0].Seq != second.Seq+1 {
			t.Fatalf("after resync got %+v, want delta %d", ds, second.Seq+1)
		}
	case <-time.After(wait):
		t.Fatal("no delta after the resync")
	}
	if len(k.deltasC) != 0 {
		t.Fatalf("deltas from before the resync were sent: %v", <-k.deltasC)
	}
}

func TestRequestResync(t *testing.T) {
	h := newTestHub(t, Config{})
	k := newChanSink(false)
	sub := runStream(t, h, k)
	recvSnapshot(t, k)
	h.requestResync(sub)
	if s := recvSnapshot(t, k); s.Seq != 0 {
		t.Fatalf("resync seq %d, want 0", s.Seq)
	}
}

// subscribedHub returns a hub reading src with one subscriber, resynced:
// the test reads its buffer directly.
func subscribedHub(t *testing.T, src *fakeSource) (*Hub, *subscriber) {
	t.Helper()
	h, err := New(Config{Token: testToken, StatsInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	h.Start(src)
	sub := h.subscribe()
	t.Cleanup(func() { h.unsubscribe(sub) })
	h.resync(sub)
	return h, sub
}

func TestStatsRatesAndPairMessages(t *testing.T) {
	src := &fakeSource{}
	h, sub := subscribedHub(t, src)

	t0 := time.Unix(1000, 0)
	h.cfg.Now = func() time.Time { return t0 }
	src.stats = server.Stats{Messages: 10, Acks: 4}
	src.pairs = []server.PairInfo{{Pair: server.Pair{A: "a", B: "b"}, Messages: 3}, {Pair: server.Pair{A: "c", B: "d"}, Messages: 0}}
	last := &sampler{}
	h.sampleStats(last)

	h.cfg.Now = func() time.Time { return t0.Add(2 * time.Second) }
	src.stats = server.Stats{Messages: 30, Acks: 8, Refusals: map[protocol.Code]uint64{protocol.CodeBusy: 2}}
	src.pairs = []server.PairInfo{{Pair: server.Pair{A: "a", B: "b"}, Messages: 3}, {Pair: server.Pair{A: "c", B: "d"}, Messages: 7}}
	h.sampleStats(last)

	d1, d2 := <-sub.ch, <-sub.ch
	if d1.Kind != adminapi.KindStats || d1.Stats.MessagesPerSec != 0 || len(d1.PairMessages) != 2 || d1.PairRates != nil {
		t.Fatalf("first sample %+v %+v", d1, d1.Stats)
	}
	st := d2.Stats
	if st.MessagesPerSec != 10 || st.AcksPerSec != 2 || st.Refusals["BUSY"] != 2 || st.Subscribers != 1 {
		t.Fatalf("second sample stats %+v", st)
	}
	if len(d2.PairMessages) != 1 || d2.PairMessages["c"] != 7 {
		t.Fatalf("second sample pair messages %v, want only c:7", d2.PairMessages)
	}
	if len(d2.PairRates) != 1 || d2.PairRates["c"] != 3.5 {
		t.Fatalf("second sample pair rates %v, want only c:3.5", d2.PairRates)
	}
}

// TestStatsPairRatesStartAfresh: a pair that ends is forgotten, and a new
// pair of the same asking side gets no rate from the old pair's count.
func TestStatsPairRatesStartAfresh(t *testing.T) {
	src := &fakeSource{}
	h, sub := subscribedHub(t, src)
	t0 := time.Unix(1000, 0)
	last := &sampler{}
	sample := func(sec int, pairs ...server.PairInfo) adminapi.Delta {
		t.Helper()
		h.cfg.Now = func() time.Time { return t0.Add(time.Duration(sec) * time.Second) }
		src.pairs = pairs
		h.sampleStats(last)
		return <-sub.ch
	}
	pair := func(a, b string, since, n int) server.PairInfo {
		return server.PairInfo{Pair: server.Pair{A: a, B: b, Since: t0.Add(time.Duration(since) * time.Second)}, Messages: uint64(n)}
	}
	sample(0, pair("alpha", "bravo", -60, 120), pair("echo", "foxtrot", -60, 7))
	// echo's pair ends; alpha's ends and alpha pairs again, with a new
	// count that happens to be above the old one.
	d := sample(1, pair("alpha", "charlie", 1, 130))
	if _, ok := last.pairs["echo"]; ok {
		t.Error("the ended pair echo is still counted")
	}
	if r, ok := d.PairRates["alpha"]; ok || d.PairMessages["alpha"] != 130 {
		t.Errorf("alpha's new pair: count %d, rate %v from the old pair's count", d.PairMessages["alpha"], r)
	}
	d = sample(2, pair("alpha", "charlie", 1, 140))
	if r := d.PairRates["alpha"]; r != 10 {
		t.Errorf("alpha's new pair: rate %v, want 10", r)
	}
	if len(last.pairs) != 1 {
		t.Errorf("counts kept for %v, want alpha's only", last.pairs)
	}
}

func TestCommandsArePublished(t *testing.T) {
	src := &fakeSource{kicked: make(chan string, 1)}
	h, sub := subscribedHub(t, src)

	if err := h.Kick("dev1", "127.0.0.1:1"); err != nil {
		t.Fatalf("Kick: %v", err)
	}
	if got := <-src.kicked; got != "dev1" {
		t.Fatalf("kicked %q", got)
	}
	err := h.Kick("ghost", "127.0.0.1:1")
	if protocol.CodeOf(err) != protocol.CodeOffline {
		t.Fatalf("Kick(ghost) = %v, want OFFLINE", err)
	}
	err = h.Unpair("", "127.0.0.1:1")
	if protocol.CodeOf(err) != protocol.CodeBadID {
		t.Fatalf("Unpair(\"\") = %v, want BAD_ID", err)
	}
	ok, refused := <-sub.ch, <-sub.ch
	if ok.Kind != adminapi.KindCommand || ok.Command != adminapi.CommandKick || ok.ID != "dev1" || ok.Code != "" || ok.By != "127.0.0.1:1" {
		t.Fatalf("kick delta %+v", ok)
	}
	if refused.Code != "OFFLINE" {
		t.Fatalf("refused kick delta %+v", refused)
	}
	if len(sub.ch) != 0 {
		t.Fatalf("an invalid command was published: %+v", <-sub.ch)
	}
}

func TestConfigValidation(t *testing.T) {
	jwt := "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJkZXYxIn0.c2lnbmF0dXJl"
	for _, tc := range []struct {
		name  string
		token string
	}{
		{"empty", ""},
		{"space", "abc def ghi jkl mno"},
		{"control", "abcdefghijklmnop\n"},
		{"non-ascii", "abcdefghijklmnopé"},
		{"jwt", jwt},
		{"too long", string(make([]byte, MaxTokenLength+1))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(Config{Token: tc.token}); protocol.CodeOf(err) != protocol.CodeUnauthorized {
				t.Fatalf("New(%q) = %v, want an UNAUTHORIZED error", tc.token, err)
			}
		})
	}
	if _, err := New(Config{Token: testToken, Buffer: -1}); err == nil {
		t.Fatal("negative buffer accepted")
	}
	tok, err := GenerateToken()
	if err != nil {
		t.Fatal(err)
	}
	if err := ValidateToken(tok); err != nil || len(tok) < MinTokenLength {
		t.Fatalf("generated token %q: %v", tok, err)
	}
	if other, _ := GenerateToken(); other == tok {
		t.Fatal("two generated tokens are equal")
	}
}

func TestTokenMatches(t *testing.T) {
	h := hashToken(testToken)
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{testToken, true}, {"", false}, {testToken + "x", false}, {testToken[:len(testToken)-1], false}, {"P2PA_TEST-TOKEN-0123456789", false},
	} {
		if got := h.matches(tc.in); got != tc.want {
			t.Errorf("matches(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestBearer(t *testing.T) {
	for _, tc := range []struct {
		header, tok string
		ok          bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"Bearer  abc ", "abc", true},
		{"Basic abc", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"", "", false},
	} {
		tok, ok := bearer(tc.header)
		if tok != tc.tok || ok != tc.ok {
			t.Errorf("bearer(%q) = %q, %v; want %q, %v", tc.header, tok, ok, tc.tok, tc.ok)
		}
	}
}

// BenchmarkOnEvent measures the relay's cost of publishing one event: with
// no subscriber, with one stuck subscriber (marked for resync), and with
// two subscribers whose streams keep up.
func BenchmarkOnEvent(b *testing.B) {
	ev := server.Event{Kind: server.DeviceConnected, ID: "dev", Device: &server.Device{ID: "dev", Address: "127.0.0.1:1"}}
	run := func(b *testing.B, h *Hub) {
		b.ReportAllocs()
		for b.Loop() {
			h.OnEvent(ev)
		}
	}
	b.Run("none", func(b *testing.B) { run(b, newTestHub(b, Config{})) })
	b.Run("stuck", func(b *testing.B) {
		h := newTestHub(b, Config{Buffer: 4})
		stuck := h.subscribe()
		defer h.unsubscribe(stuck)
		run(b, h)
	})
	b.Run("two-reading", func(b *testing.B) {
		h := newTestHub(b, Config{Buffer: 1 << 16})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		for range 2 {
			sub := h.subscribe()
			defer h.unsubscribe(sub)
			h.resync(sub)
			go func() {
				for {
					select {
					case <-sub.ch:
					case <-ctx.Done():
						return
					}
				}
			}()
		}
		run(b, h)
	})
}

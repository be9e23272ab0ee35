package admin

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/p2prelay/p2prelay/admin/adminapi"
	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server"
)

// watchedHub returns a hub reading src, whose watches refresh only when
// woken (the stats never tick).
func watchedHub(t *testing.T, src *fakeSource, cfg Config) *Hub {
	t.Helper()
	cfg.Token, cfg.StatsInterval = testToken, time.Hour
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	h.Start(src)
	return h
}

// nextDetail returns the next detail the sink got, skipping the others
// until one satisfies ok.
func nextDetail(t *testing.T, k *chanSink, ok func(*adminapi.DeviceDetail) bool) *adminapi.DeviceDetail {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case d := <-k.details:
			if ok(d) {
				return d
			}
		case <-timeout:
			t.Fatal("no such detail")
		}
	}
}

func nextTraffic(t *testing.T, k *chanSink) *adminapi.TrafficBatch {
	t.Helper()
	select {
	case b := <-k.traffics:
		return b
	case <-time.After(wait):
		t.Fatal("no traffic")
	}
	return nil
}

func online(d *adminapi.DeviceDetail) bool { return !d.Offline }

// TestWatchLifecycle: one relay watch per device, whatever the number of
// watchers; traffic goes to each watcher; the relay watch stops with the
// last watcher, whether it unwatches or leaves.
func TestWatchLifecycle(t *testing.T) {
	src := &fakeSource{}
	src.setDevice("A", &server.DeviceDetail{MessagesIn: 7, BytesIn: 70, Refusals: map[protocol.Code]uint64{protocol.CodeTooLarge: 2}})
	h := watchedHub(t, src, Config{})
	k1, k2 := newChanSink(false), newChanSink(false)
	s1, s2 := runStream(t, h, k1), runStream(t, h, k2)
	recvSnapshot(t, k1)
	recvSnapshot(t, k2)

	if err := h.watch(s1, "A"); err != nil {
		t.Fatal(err)
	}
	det := nextDetail(t, k1, online)
	if det.ID != "A" || det.MessagesIn != 7 || det.Refusals != 2 || det.RefusalsByCode["TOO_LARGE"] != 2 || !det.Watched {
		t.Fatalf("detail %+v", det)
	}
	if got := src.watched(); !slices.Equal(got, []string{"A"}) {
		t.Fatalf("relay watches %v, want [A]", got)
	}
	src.tap("A", server.Traffic{Dir: server.DirIn, Event: "tick", Size: 3})
	if b := nextTraffic(t, k1); len(b.Traffic) != 1 || b.Traffic[0].Event != "tick" || b.Traffic[0].ID != "A" || b.Traffic[0].Size != 3 {
		t.Fatalf("traffic %+v", b)
	}

	if err := h.watch(s2, "A"); err != nil {
		t.Fatal(err)
	}
	nextDetail(t, k2, online)
	src.tap("A", server.Traffic{Dir: server.DirOut, Event: "tock"})
	for _, k := range []*chanSink{k1, k2} {
		if b := nextTraffic(t, k); b.Traffic[0].Event != "tock" {
			t.Fatalf("traffic %+v", b)
		}
	}
	if got := src.watched(); len(got) != 1 {
		t.Fatalf("relay watches %v: two watchers, one relay watch", got)
	}

	h.unwatch(s1, "A")
	src.tap("A", server.Traffic{Dir: server.DirIn, Event: "only-2"})
	if b := nextTraffic(t, k2); b.Traffic[0].Event != "only-2" {
		t.Fatalf("traffic %+v", b)
	}
	if len(s1.watches.traffic) != 0 || len(k1.traffics) != 0 {
		t.Fatal("traffic went to a subscriber that unwatched")
	}
	if got := src.watched(); len(got) != 1 {
		t.Fatalf("relay watch stopped with a watcher left: %v", got)
	}

	h.unsubscribe(s2) // its connection ends
	if got := src.watched(); len(got) != 0 {
		t.Fatalf("relay watch left after the last watcher: %v", got)
	}
	if got := h.Watched(); len(got) != 0 {
		t.Fatalf("hub watches %v", got)
	}
	if src.tap("A", server.Traffic{Dir: server.DirIn, Event: "nobody"}) {
		t.Fatal("the relay still calls the watch")
	}
}

// TestWatchFollowsTheDevice: a watched device that leaves is reported
// offline; when it connects again (a new device to the relay) it is watched
// again.
func TestWatchFollowsTheDevice(t *testing.T) {
	src := &fakeSource{}
	h := watchedHub(t, src, Config{})
	k := newChanSink(false)
	sub := runStream(t, h, k)
	recvSnapshot(t, k)

	// Watched before it connects.
	if err := h.watch(sub, "B"); err != nil {
		t.Fatal(err)
	}
	if det := nextDetail(t, k, func(*adminapi.DeviceDetail) bool { return true }); !det.Offline || det.ID != "B" {
		t.Fatalf("detail of a device not connected: %+v", det)
	}
	src.setDevice("B", &server.DeviceDetail{})
	h.OnEvent(server.Event{Kind: server.DeviceConnected, ID: "B", Device: &server.Device{ID: "B"}})
	nextDetail(t, k, online)
	if got := src.watched(); !slices.Equal(got, []string{"B"}) {
		t.Fatalf("relay watches %v after B connected", got)
	}

	src.setDevice("B", nil)
	h.OnEvent(server.Event{Kind: server.DeviceDisconnected, ID: "B", Reason: "transport close"})
	nextDetail(t, k, func(d *adminapi.DeviceDetail) bool { return d.Offline })
	if got := h.Watched(); len(got) != 0 {
		t.Fatalf("hub holds a relay watch of a device gone: %v", got)
	}

	src.setDevice("B", &server.DeviceDetail{MessagesIn: 1})
	h.OnEvent(server.Event{Kind: server.DeviceConnected, ID: "B", Device: &server.Device{ID: "B"}})
	nextDetail(t, k, online)
	if !src.tap("B", server.Traffic{Dir: server.DirIn, Event: "back"}) {
		t.Fatal("B is not watched again after it came back")
	}
	if b := nextTraffic(t, k); b.Traffic[0].Event != "back" {
		t.Fatalf("traffic %+v", b)
	}
}

func TestWatchLimits(t *testing.T) {
	src := &fakeSource{}
	h := watchedHub(t, src, Config{})
	sub := h.subscribe()
	defer h.unsubscribe(sub)
	if err := h.watch(sub, ""); protocol.CodeOf(err) != protocol.CodeBadID {
		t.Fatalf("watch of an empty id: %v", err)
	}
	for i := range adminapi.MaxWatches {
		if err := h.watch(sub, fmt.Sprintf("d%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.watch(sub, "d0"); err != nil {
		t.Fatalf("watching a device again: %v", err)
	}
	if err := h.watch(sub, "one-more"); protocol.CodeOf(err) != protocol.CodeRateLimited {
		t.Fatalf("watch past the limit: %v", err)
	}
}

// TestWatchTrafficNeverBlocksTheRelay: a watcher that does not read loses
// traffic, counted, and the relay's calls return at once.
func TestWatchTrafficNeverBlocksTheRelay(t *testing.T) {
	src := &fakeSource{}
	src.setDevice("A", &server.DeviceDetail{})
	h := watchedHub(t, src, Config{TrafficBuffer: 4})
	k := newChanSink(true)
	sub := runStream(t, h, k)
	recvSnapshot(t, k) // the stream now waits for the ack
	if err := h.watch(sub, "A"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sub.watches.detailed: // the hub attached its watch, then read the detail
	case <-time.After(wait):
		t.Fatal("the watch did not start")
	}
	for range 100 {
		src.tap("A", server.Traffic{Dir: server.DirIn, Event: "flood"})
	}
	close(k.gate)
	var got, lost uint64
	for got+lost < 100 {
		b := nextTraffic(t, k)
		got += uint64(len(b.Traffic))
		lost += b.Lost
	}
	if got > 4 || lost == 0 {
		t.Fatalf("got %d, lost %d: want the buffer's worth and the rest counted lost", got, lost)
	}
}

package loadgen

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2prelay/p2prelay/internal/testkit"
	"github.com/p2prelay/p2prelay/server"
	"github.com/p2prelay/p2prelay/server/socketio"
)

func TestPacketParsing(t *testing.T) {
	cases := []struct {
		msg   string
		kind  byte
		ack   int64
		event string
		data  string
	}{
		{`42["bench",{"seq":1}]`, KindEvent, NoAck, "bench", `["bench",{"seq":1}]`},
		{`4217["P2P_REGISTER","a1"]`, KindEvent, 17, "P2P_REGISTER", `["P2P_REGISTER","a1"]`},
		{`430[true]`, KindAck, 0, "", `[true]`},
		{`43123["ok"]`, KindAck, 123, "", `["ok"]`},
		{`42["we\"ird",1]`, KindEvent, NoAck, `we"ird`, `["we\"ird",1]`},
	}
	for _, tc := range cases {
		var got []Packet
		c := &Conn{handler: func(_ *Conn, p Packet) {
			p.Data = append([]byte(nil), p.Data...)
			got = append(got, p)
		}}
		c.dispatch([]byte(tc.msg))
		if len(got) != 1 {
			t.Fatalf("%s: handler called %d times", tc.msg, len(got))
		}
		p := got[0]
		if p.Kind != tc.kind || p.AckID != tc.ack || string(p.Data) != tc.data {
			t.Errorf("%s: got kind %c ack %d data %s", tc.msg, p.Kind, p.AckID, p.Data)
		}
		if tc.kind == KindEvent {
			if p.Event() != tc.event {
				t.Errorf("%s: event %q, want %q", tc.msg, p.Event(), tc.event)
			}
			if plain := !strings.ContainsAny(tc.event, `"\\`); plain && (!p.IsEvent(tc.event) || p.IsEvent(tc.event+"x")) {
				t.Errorf("%s: IsEvent disagrees with %q", tc.msg, tc.event)
			}
		}
	}
	// Packets the handler never sees: Engine.IO noop, namespace
	// disconnect, garbage.
	for _, msg := range []string{"6", "41", "", "4", "x42[]"} {
		c := &Conn{handler: func(*Conn, Packet) { t.Errorf("%q reached the handler", msg) }}
		c.dispatch([]byte(msg))
	}
}

func TestAppend(t *testing.T) {
	if got := string(AppendEvent(nil, NoAck, []byte(`["a"]`))); got != `42["a"]` {
		t.Errorf("AppendEvent without ack: %s", got)
	}
	if got := string(AppendEvent(nil, 7, []byte(`["a"]`))); got != `427["a"]` {
		t.Errorf("AppendEvent with ack: %s", got)
	}
	if got := string(AppendAck(nil, 0, []byte(`[true]`))); got != `430[true]` {
		t.Errorf("AppendAck: %s", got)
	}
}

func TestPercentile(t *testing.T) {
	var v []time.Duration
	for i := 1; i <= 100; i++ {
		v = append(v, time.Duration(i))
	}
	for q, want := range map[float64]time.Duration{0.5: 50, 0.99: 99, 0.999: 100, 0: 1, 1: 100} {
		if got := Percentile(v, q); got != want {
			t.Errorf("Percentile(%v) = %d, want %d", q, got, want)
		}
	}
	if Percentile(nil, 0.5) != 0 {
		t.Error("Percentile of nothing is not 0")
	}
}

func TestSampleProc(t *testing.T) {
	s, err := SampleProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS <= 0 || s.HWM < s.RSS || s.Threads < 1 || s.CPU < 0 {
		t.Errorf("implausible sample %+v", s)
	}
	if _, err := SampleProc(-1); err == nil {
		t.Error("sampling a missing process did not fail")
	}
	if err := SampleCounters(os.Getpid(), &s); err != nil {
		t.Fatal(err)
	}
	if s.Reads <= 0 || s.Switches <= 0 {
		t.Errorf("no reads or context switches counted: %+v", s)
	}
}

// TestAgainstRelay drives an in-process relay: the protocol check and a
// short run of every scenario, with this test's process as the relay's.
func TestAgainstRelay(t *testing.T) {
	relay := testkit.StartRelay(t, socketio.ServiceConfig{Relay: server.Config{Rate: server.Unlimited}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := Check(ctx, relay.URL); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.LatencyPairs, cfg.Pairs, cfg.Devices = 1, 2, 20
	cfg.Warmup, cfg.Duration = 50*time.Millisecond, 200*time.Millisecond
	cfg.FleetPairs, cfg.FleetRate = 4, 50
	cfg.FleetWarmup, cfg.FleetDuration = 50*time.Millisecond, 200*time.Millisecond
	cfg.BaseSettle = Settle{Every: 10 * time.Millisecond, Min: 20 * time.Millisecond, Stable: 20 * time.Millisecond, Max: 100 * time.Millisecond, Tolerance: 1}
	cfg.Settle = Settle{Every: 10 * time.Millisecond, Min: 20 * time.Millisecond, Stable: 20 * time.Millisecond, Max: 100 * time.Millisecond, Tolerance: 1}
	target := Target{URL: relay.URL, PID: os.Getpid()}
	for _, name := range Scenarios {
		res, err := Run(ctx, cfg, name, target)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res.Errors != 0 {
			t.Errorf("%s: %d errors, first: %s", name, res.Errors, res.FirstError)
		}
		want := MetricRate
		switch name {
		case ScenarioLatency, ScenarioFleet, ScenarioFleet10x:
			want = MetricP99
		case ScenarioDevices:
			want = MetricPair
		}
		if res.Metrics[want] <= 0 {
			t.Errorf("%s: %s = %v, want > 0 (metrics %v)", name, want, res.Metrics[want], res.Metrics)
		}
		if _, paced := res.Metrics[MetricOffered]; paced != (name == ScenarioFleet || name == ScenarioFleet10x) {
			t.Errorf("%s: offered rate %v", name, res.Metrics[MetricOffered])
		}
	}
	// The cluster scenario, with both "nodes" this one relay: its
	// devices' two dialers, the check across two URLs, and the CPU of one
	// process counted once.
	if err := CheckCluster(ctx, relay.URL, relay.URL, false); err != nil {
		t.Fatal(err)
	}
	res, err := Run(ctx, cfg, ScenarioCluster, Target{URL: relay.URL, PID: os.Getpid(), PeerURL: relay.URL, PeerPID: os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || res.Metrics[MetricRate] <= 0 || res.Metrics[MetricP99] <= 0 {
		t.Errorf("cluster: %d errors (%s), metrics %v", res.Errors, res.FirstError, res.Metrics)
	}
	if m := res.Metrics; m[MetricTotalCPUPerMsg] != m[MetricCPUPerMsg] || m[MetricRedisCPU] != 0 {
		t.Errorf("cluster without Redis: total CPU per message %v, relay's %v, Redis's %v", m[MetricTotalCPUPerMsg], m[MetricCPUPerMsg], m[MetricRedisCPU])
	}
	if _, err := Run(ctx, cfg, "nope", target); err == nil {
		t.Error("an unknown scenario ran")
	}
}

func TestSampleGroup(t *testing.T) {
	one, err := SampleProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	two, err := SampleGroup([]int{os.Getpid(), os.Getpid()}, true)
	if err != nil {
		t.Fatal(err)
	}
	// The same process twice: twice its figures, give or take what it
	// did between the samples.
	if two.Threads < 2*one.Threads || two.RSS < one.RSS*3/2 || two.CPU < 2*one.CPU || two.Reads <= 0 {
		t.Errorf("sum of two samples %+v against one %+v", two, one)
	}
	if _, err := SampleGroup([]int{os.Getpid(), -1}, false); err == nil {
		t.Error("a missing process did not fail the group")
	}
	if got := (Target{PID: 5, PeerPID: 5}).relays(); !slices.Equal(got, []int{5}) {
		t.Errorf("one process as both nodes: %v", got)
	}
	if got := (Target{PID: 5, PeerPID: 6, RedisPID: 7}).relays(); !slices.Equal(got, []int{5, 6}) {
		t.Errorf("two nodes: %v", got)
	}
}

package harness

import (
	"bytes"
	"context"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/p2prelay/p2prelay/bench/loadgen"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := Median(tc.in); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if !math.IsNaN(Median(nil)) {
		t.Error("Median of nothing is not NaN")
	}
}

func TestNumber(t *testing.T) {
	for v, want := range map[float64]string{1234567: "1,234,567", 123.4: "123", 12.34: "12.3", 1.234: "1.23", -4321: "-4,321", math.NaN(): "-"} {
		if got := Number(v); got != want {
			t.Errorf("Number(%v) = %q, want %q", v, got, want)
		}
	}
}

// TestJudge checks medians, ratios and verdicts in both directions, and
// that an axis no record measured is left out.
func TestJudge(t *testing.T) {
	rec := func(round int, relay, sc string, m map[string]float64) Record {
		return Record{Round: round, Relay: relay, Result: loadgen.Result{Scenario: sc, Metrics: m}}
	}
	res := &Results{Relays: [2]string{"p2pd", "node"}, Rounds: 3}
	for i, v := range []struct{ p2pdRate, nodeRate, p2pdCPU, nodeCPU float64 }{
		{130, 100, 8, 10}, {120, 100, 9, 10}, {140, 110, 7, 10},
	} {
		res.Records = append(res.Records,
			rec(i+1, "p2pd", loadgen.ScenarioAck, map[string]float64{loadgen.MetricRate: v.p2pdRate, loadgen.MetricCPUPerMsg: v.p2pdCPU}),
			rec(i+1, "node", loadgen.ScenarioAck, map[string]float64{loadgen.MetricRate: v.nodeRate, loadgen.MetricCPUPerMsg: v.nodeCPU}))
	}
	vs := Judge(res)
	byLabel := map[string]Verdict{}
	for _, v := range vs {
		byLabel[v.Label] = v
	}
	tput, ok := byLabel["ack throughput"]
	if !ok || tput.Median != [2]float64{130, 100} || tput.Ratio != 1.3 || !tput.Pass {
		t.Errorf("ack throughput verdict %+v", tput)
	}
	cpu := byLabel["server CPU per relayed message, acks"]
	if cpu.Median != [2]float64{8, 10} || math.Abs(cpu.Ratio-0.8) > 1e-9 || !cpu.Pass {
		t.Errorf("CPU verdict %+v", cpu)
	}
	if _, ok := byLabel["ack round trip p99"]; ok {
		t.Error("a verdict for an axis nothing measured")
	}
	res.Records[0].Metrics[loadgen.MetricRate] = 50 // p2pd median drops to 120: 1.2x
	for _, v := range Judge(res) {
		if v.Label == "ack throughput" && v.Pass {
			t.Errorf("1.2x passed a 1.25x target: %+v", v)
		}
	}

	res.Verdicts = Judge(res)
	var out bytes.Buffer
	PrintReport(&out, res)
	for _, want := range []string{"ack throughput (acks/s)", "FAIL", "PASS", ">= 1.25x", "<= 0.80x"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestIdleBreakdown(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "memstats.txt")
	text := "heap profile: 1: 2 [3: 4] @ heap/1048576\n\n# runtime.MemStats\n# Alloc = 1\n# HeapAlloc = 2048000\n" +
		"# HeapInuse = 4096000\n# Stack = 1024000 / 1024000\n# PauseNs = [1 2 3]\n"
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := idleBreakdown(file, 1000)
	if err != nil {
		t.Fatal(err)
	}
	want := "idle, per device: live heap 2.0 KiB, heap spans in use 4.0 KiB, goroutine stacks 1.0 KiB"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if err := os.WriteFile(file, []byte("# HeapAlloc = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := idleBreakdown(file, 1000); err == nil || !strings.Contains(err.Error(), "HeapInuse") {
		t.Errorf("statistics missing: err = %v", err)
	}
}

// TestBigDevicesCheckedFirst: a bad final run is refused before any round
// runs, not after all of them.
func TestBigDevicesCheckedFirst(t *testing.T) {
	var out bytes.Buffer
	_, err := Bench(context.Background(), Options{
		Rounds: 1, Config: loadgen.DefaultConfig(), BigDevices: 10001,
		OutDir: t.TempDir(), Out: &out,
	})
	if err == nil || !strings.Contains(err.Error(), "big devices") {
		t.Fatalf("err = %v, want the big devices refused", err)
	}
	if out.Len() != 0 {
		t.Fatalf("ran before refusing: %q", out.String())
	}
}

func TestSentence(t *testing.T) {
	names := [2]string{"p2pd", "node"}
	axis := func(sc, metric string) Axis {
		for _, ax := range Axes {
			if ax.Scenario == sc && ax.Metric == metric {
				return ax
			}
		}
		t.Fatalf("no axis %s %s", sc, metric)
		return Axis{}
	}
	for _, tc := range []struct {
		ax     Axis
		median [2]float64
		want   string
	}{
		{axis(loadgen.ScenarioFleet, loadgen.MetricCPUPerMsg), [2]float64{8.1, 13}, "p2pd uses 0.62x node's CPU per relayed message (8.10 µs against 13.0 µs): p2pd wins."},
		{axis(loadgen.ScenarioFleet, loadgen.MetricP99), [2]float64{360, 300}, "p2pd takes 1.20x node's time to complete an ack at p99 (360 µs against 300 µs): node wins."},
		{axis(loadgen.ScenarioFleet, loadgen.MetricRSS), [2]float64{40, 40.1}, "p2pd uses 1.00x node's memory (40.0 MiB against 40.1 MiB): even."},
		{axis(loadgen.ScenarioAck, loadgen.MetricRate), [2]float64{72000, 32000}, "p2pd relays 2.25x node's acks per second (72,000 acks/s against 32,000 acks/s): p2pd wins."},
		{axis(loadgen.ScenarioAck, loadgen.MetricRate), [2]float64{16000, 32000}, "p2pd relays 0.50x node's acks per second (16,000 acks/s against 32,000 acks/s): node wins."},
	} {
		v := Verdict{Axis: tc.ax, Median: tc.median, Ratio: tc.median[0] / tc.median[1]}
		if got := Sentence(v, names); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
	for _, ax := range Axes {
		if (ax.Target != 0) != (ax.Says != "") {
			t.Errorf("axis %q: a target without a sentence, or a sentence without a target", ax.Label)
		}
	}
}

// TestFleetReport: the fleet's verdicts come first, each with its
// sentence, and a late generator is flagged.
func TestFleetReport(t *testing.T) {
	res := &Results{Relays: [2]string{"p2pd", "node"}, Rounds: 3}
	for round := 1; round <= 3; round++ {
		for relay, m := range map[string]map[string]float64{
			"p2pd": {loadgen.MetricCPUPerMsg: 20, loadgen.MetricP99: 3000, loadgen.MetricRSS: 100, loadgen.MetricLagP99: 900},
			"node": {loadgen.MetricCPUPerMsg: 40, loadgen.MetricP99: 2500, loadgen.MetricRSS: 120, loadgen.MetricLagP99: 800},
		} {
			m := maps.Clone(m)
			if round == 3 && relay == "node" {
				m[loadgen.MetricLagP99] = 2500 // late, past LagLimit
			}
			res.Records = append(res.Records, Record{Round: round, Relay: relay, Result: loadgen.Result{Scenario: loadgen.ScenarioFleet, Metrics: m}})
		}
	}
	res.Verdicts = Judge(res)
	if len(res.Verdicts) == 0 || res.Verdicts[0].Scenario != loadgen.ScenarioFleet || res.Verdicts[0].Metric != loadgen.MetricCPUPerMsg {
		t.Fatalf("first verdict %+v, want the fleet's CPU per message", res.Verdicts[0])
	}
	var out bytes.Buffer
	PrintReport(&out, res)
	for _, want := range []string{
		"fleet: server CPU per relayed message (µs)", "<= 0.70x",
		"p2pd uses 0.50x node's CPU per relayed message (20.0 µs against 40.0 µs): p2pd wins.",
		"p2pd takes 1.20x node's time to complete an ack at p99 (3,000 µs against 2,500 µs): node wins.",
		"2 of 3 targets met",
		"WARNING: the generator fired its sends late (p99 lag over 2ms and over 10% of the ack p99) in 1 of 6 measurements",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// TestBigOnly: a run of only the big run reports it, and who wins it.
func TestBigOnly(t *testing.T) {
	big := func(relay string, rss, per float64) Record {
		return Record{Relay: relay, Result: loadgen.Result{Scenario: loadgen.ScenarioDevices, Metrics: map[string]float64{
			loadgen.MetricDevices: 100000, loadgen.MetricRSS: rss, loadgen.MetricMemPerDevice: per, loadgen.MetricPair: 4, loadgen.MetricConnect: 20,
		}}}
	}
	res := &Results{Relays: [2]string{"p2pd", "node"}, Big: []Record{big("p2pd", 3000, 30), big("node", 2000, 20)}}
	var out bytes.Buffer
	PrintReport(&out, res)
	for _, want := range []string{
		"p2pd with 100,000 idle paired devices: connected in 20.0 s, paired in 4.00 s; RSS 3,000 MiB",
		"p2pd uses 1.50x node's memory per idle paired device (30.0 KiB against 20.0 KiB): node wins.",
		"p2pd pairs the devices in 1.00x node's time (4.00 s against 4.00 s): even.",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "medians of") || strings.Contains(out.String(), "targets met") {
		t.Errorf("a table or targets for a run without rounds:\n%s", out.String())
	}
}

func TestRelayFor(t *testing.T) {
	p := P2PD("p2pd", "tok", DefaultSettings).Pinned("1")
	if got := p.For(50000); !slices.Equal(got.Argv, p.Argv) {
		t.Errorf("within its limit: %v", got.Argv)
	}
	got := p.For(100000)
	if want := append(slices.Clone(p.Argv), "--max-devices", "100000"); !slices.Equal(got.Argv, want) {
		t.Errorf("beyond its limit: %v, want %v", got.Argv, want)
	}
	if len(p.For(100000).Argv) != len(p.Argv)+2 || got.Argv[0] != "taskset" {
		t.Errorf("For changed the relay it was called on, or lost taskset: %v", got.Argv)
	}
	n := Node("node", "relay.mjs", DefaultSettings, false)
	if got := n.For(100000); !slices.Equal(got.Argv, n.Argv) {
		t.Errorf("node, which has no limit: %v", got.Argv)
	}
}

func TestRaiseFileLimit(t *testing.T) {
	if err := RaiseFileLimit(16); err != nil {
		t.Fatal(err)
	}
	if err := RaiseFileLimit(1 << 40); err == nil || !strings.Contains(err.Error(), "ulimit -Hn") {
		t.Errorf("an impossible limit: %v", err)
	}
}

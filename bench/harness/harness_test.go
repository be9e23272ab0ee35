package harness

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
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

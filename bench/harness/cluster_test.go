package harness

import (
	"bytes"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/p2prelay/p2prelay/bench/loadgen"
)

func clusterRecord(round int, setup string, m map[string]float64) Record {
	return Record{Round: round, Relay: setup, Result: loadgen.Result{Scenario: loadgen.ScenarioCluster, Metrics: m}}
}

func TestJudgeCluster(t *testing.T) {
	var recs []Record
	for i, v := range []struct{ two, one, node, p99two, p99node float64 }{
		{40, 70, 20, 900, 1000}, {50, 72, 25, 800, 1200}, {45, 80, 30, 1100, 1000},
	} {
		recs = append(recs,
			clusterRecord(i+1, SetupP2PDCluster, map[string]float64{loadgen.MetricRate: v.two, loadgen.MetricP99: v.p99two}),
			clusterRecord(i+1, SetupP2PD, map[string]float64{loadgen.MetricRate: v.one}),
			clusterRecord(i+1, SetupNodeCluster, map[string]float64{loadgen.MetricRate: v.node, loadgen.MetricP99: v.p99node}))
	}
	med := ClusterMedians(recs)
	if med[SetupP2PDCluster][loadgen.MetricRate] != 45 || med[SetupP2PD][loadgen.MetricRate] != 72 || med[SetupNodeCluster][loadgen.MetricP99] != 1000 {
		t.Fatalf("medians %v", med)
	}
	byLabel := map[string]ClusterVerdict{}
	for _, v := range JudgeCluster(recs) {
		byLabel[v.Label] = v
	}
	single := byLabel["cross-node ack throughput, against one p2pd node"]
	if single.Median != [2]float64{45, 72} || math.Abs(single.Ratio-0.625) > 1e-9 || !single.Pass {
		t.Errorf("against one node: %+v", single)
	}
	node := byLabel["cross-node ack throughput, against the Node cluster"]
	if node.Median != [2]float64{45, 25} || math.Abs(node.Ratio-1.8) > 1e-9 || !node.Pass {
		t.Errorf("against the Node cluster: %+v", node)
	}
	p99 := byLabel["cross-node ack round trip p99, against the Node cluster"]
	if p99.Median != [2]float64{900, 1000} || !p99.Pass || p99.Missed() {
		t.Errorf("p99: %+v", p99)
	}
	if _, ok := byLabel["relays' CPU per message, against the Node cluster"]; ok {
		t.Error("a verdict on a figure nothing measured")
	}
	// The Node cluster faster at p99, and p2pd's nodes below half of one.
	recs[2].Metrics[loadgen.MetricP99] = 500
	recs[8].Metrics[loadgen.MetricP99] = 500
	recs[1].Metrics[loadgen.MetricRate] = 100
	recs[4].Metrics[loadgen.MetricRate] = 100
	for _, v := range JudgeCluster(recs) {
		if v.Target != 0 && v.Label != "cross-node ack throughput, against the Node cluster" && !v.Missed() {
			t.Errorf("should miss: %+v", v)
		}
	}
}

func TestRotate(t *testing.T) {
	setups := []Setup{{Name: "a"}, {Name: "b"}, {Name: "c"}}
	for round, want := range map[int]string{1: "abc", 2: "bca", 3: "cab", 4: "abc"} {
		var got string
		for _, s := range rotate(setups, round) {
			got += s.Name
		}
		if got != want {
			t.Errorf("round %d: %s, want %s", round, got, want)
		}
	}
}

func TestClusterSetups(t *testing.T) {
	p := P2PD("p2pd", "tok", DefaultSettings).Pinned("1")
	one := P2PDNodes(SetupP2PD, p, 1)
	if one.Redis || len(one.Nodes("")) != 1 || !slices.Equal(one.Nodes("")[0].Argv, p.Argv) {
		t.Errorf("one node: %+v", one.Nodes(""))
	}
	two := P2PDNodes(SetupP2PDCluster, p, 2)
	nodes := two.Nodes("redis://127.0.0.1:7000")
	if !two.Redis || len(nodes) != 2 {
		t.Fatalf("two nodes: %+v", nodes)
	}
	for i, n := range nodes {
		tail := n.Argv[len(n.Argv)-4:]
		if want := []string{"--redis", "redis://127.0.0.1:7000", "--node-id", []string{"n1", "n2"}[i]}; !slices.Equal(tail, want) || n.Argv[0] != "taskset" {
			t.Errorf("node %d: %v", i+1, n.Argv)
		}
	}
	if len(p.Argv) != len(nodes[0].Argv)-4 {
		t.Errorf("the nodes changed the relay they came from: %v", p.Argv)
	}
	nc := NodeCluster(SetupNodeCluster, Node("node", "bench/node-relay/relay.mjs", DefaultSettings, false), "bench/node-relay/cluster.mjs", 2)
	nn := nc.Nodes("redis://127.0.0.1:7000")
	if !nc.Redis || !nc.FirstValueOnly || len(nn) != 2 {
		t.Fatalf("node cluster: %+v", nn)
	}
	if nn[1].Argv[1] != "bench/node-relay/cluster.mjs" || !slices.Contains(nn[1].Argv, "--ack-timeout") || nn[1].Argv[len(nn[1].Argv)-1] != "n2" {
		t.Errorf("node cluster's second node: %v", nn[1].Argv)
	}
	r := RedisServer("/usr/bin/redis-server", "/tmp/x", 7000)
	if !slices.Contains(r.Argv, "7000") || !slices.Contains(r.Argv, "127.0.0.1") || !r.Ready.MatchString("* Ready to accept connections tcp") {
		t.Errorf("redis: %v", r.Argv)
	}
}

func TestClusterReport(t *testing.T) {
	res := &ClusterResults{Rounds: 1, Setups: []string{SetupP2PDCluster, SetupP2PD, SetupNodeCluster}}
	res.Records = []Record{
		clusterRecord(1, SetupP2PDCluster, map[string]float64{loadgen.MetricRate: 30000, loadgen.MetricP99: 900, loadgen.MetricRedisCPUPerMsg: 2,
			loadgen.MetricCPUPerMsg: 40, loadgen.MetricNodeACPUPerMsg: 21, loadgen.MetricNodeBCPUPerMsg: 19}),
		clusterRecord(1, SetupP2PD, map[string]float64{loadgen.MetricRate: 70000, loadgen.MetricP99: 500}),
		clusterRecord(1, SetupNodeCluster, map[string]float64{loadgen.MetricRate: 3000, loadgen.MetricP99: 9000, loadgen.MetricOtherCPU: 50}),
	}
	res.Verdicts = JudgeCluster(res.Records)
	var out bytes.Buffer
	PrintClusterReport(&out, res)
	for _, want := range []string{"ack throughput (acks/s)", "30,000", "CPU per message, redis-server (µs)", "2 of 3 targets met", "FAIL", ">= 1.50x", "disturbed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if s := ClusterSummary(res.Records[0].Result); !strings.Contains(s, "30,000 acks/s") || !strings.Contains(s, "relays 40.0 µs (21.0 + 19.0)") {
		t.Errorf("summary %q", s)
	}
}

package admin

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2prelay/p2prelay/admin/adminapi"
	"github.com/p2prelay/p2prelay/server"
)

// fakeNodes is a cluster's leases, set by the test.
type fakeNodes struct {
	mu     sync.Mutex // guards leases, err
	leases []NodeLease
	err    error
}

func (f *fakeNodes) set(err error, leases ...NodeLease) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leases, f.err = leases, err
}

func (f *fakeNodes) Nodes(context.Context) ([]NodeLease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]NodeLease(nil), f.leases...), f.err
}

func TestNodesInTheSnapshotAndTheStats(t *testing.T) {
	t0 := time.Unix(1000, 0)
	started := t0.Add(-time.Hour)
	nodes := &fakeNodes{}
	nodes.set(nil,
		NodeLease{ID: "n2", Address: "10.0.0.2:9000", Started: started, Renewed: t0.Add(-300 * time.Millisecond), Devices: 4, Messages: 100},
		NodeLease{ID: "n1", Address: "10.0.0.1:9000", Started: started, Renewed: t0.Add(-time.Second), Devices: 2, Messages: 50},
	)
	src := &fakeSource{devices: []server.DeviceInfo{{Device: server.Device{ID: "A", Node: "n2"}}}}
	h, err := New(Config{Token: testToken, StatsInterval: time.Hour, Node: "n1", Nodes: nodes, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	h.Start(src)
	t.Cleanup(h.Close)

	// A snapshot reads the nodes afresh.
	snap := h.Snapshot()
	if snap.Node != "n1" || !snap.Clustered() || len(snap.Nodes) != 2 {
		t.Fatalf("snapshot node %q, nodes %+v", snap.Node, snap.Nodes)
	}
	n1, n2 := snap.Nodes[0], snap.Nodes[1]
	if n1.ID != "n1" || !n1.Self || n1.Address != "10.0.0.1:9000" || n1.Devices != 2 || n1.LeaseAge != time.Second {
		t.Fatalf("n1 %+v", n1)
	}
	if n2.ID != "n2" || n2.Self || n2.Devices != 4 || n2.LeaseAge != 300*time.Millisecond || n2.MessagesPerSec != 0 {
		t.Fatalf("n2 %+v", n2)
	}
	if snap.Devices[0].Node != "n2" {
		t.Fatalf("device %+v, want its node", snap.Devices[0])
	}

	sub := h.subscribe()
	t.Cleanup(func() { h.unsubscribe(sub) })
	h.resync(sub)
	// n2 renewed two seconds later with 40 more messages; n1 did not renew.
	nodes.set(nil,
		NodeLease{ID: "n1", Address: "10.0.0.1:9000", Started: started, Renewed: t0.Add(-time.Second), Devices: 2, Messages: 50},
		NodeLease{ID: "n2", Address: "10.0.0.2:9000", Started: started, Renewed: t0.Add(1700 * time.Millisecond), Devices: 5, Messages: 140},
	)
	h.cfg.Now = func() time.Time { return t0.Add(2 * time.Second) }
	h.readNodes()
	h.sampleStats(&sampler{})
	d := <-sub.ch
	if d.Kind != adminapi.KindStats || len(d.Nodes) != 2 {
		t.Fatalf("stats delta %+v", d)
	}
	if got := d.Nodes[1]; got.MessagesPerSec != 20 || got.Devices != 5 || got.LeaseAge != 300*time.Millisecond {
		t.Fatalf("n2 in the stats %+v, want 20 msg/s", got)
	}
	if got := d.Nodes[0]; got.LeaseAge != 3*time.Second || got.MessagesPerSec != 0 {
		t.Fatalf("n1 in the stats %+v", got)
	}

	// A failed reading keeps the last one; a node that left is gone from
	// the next; a node that restarted starts its rate afresh.
	nodes.set(errors.New("redis down"))
	h.readNodes()
	h.sampleStats(&sampler{})
	if d := <-sub.ch; len(d.Nodes) != 2 || d.Nodes[1].MessagesPerSec != 20 {
		t.Fatalf("after a failed reading %+v", d.Nodes)
	}
	nodes.set(nil, NodeLease{ID: "n2", Started: t0, Renewed: t0.Add(2 * time.Second), Messages: 1})
	h.readNodes()
	h.sampleStats(&sampler{})
	if d = <-sub.ch; len(d.Nodes) != 1 || d.Nodes[0].ID != "n2" || d.Nodes[0].MessagesPerSec != 0 {
		t.Fatalf("after n1 left and n2 restarted %+v", d.Nodes)
	}

	// The state follows.
	st := adminapi.NewState(snap)
	st.Apply(d)
	if !st.Clustered() || len(st.Nodes) != 1 {
		t.Fatalf("state nodes %+v", st.Nodes)
	}
}

func TestAloneHasNoNodes(t *testing.T) {
	h, err := New(Config{Token: testToken, StatsInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	h.Start(&fakeSource{devices: []server.DeviceInfo{{Device: server.Device{ID: "A", Node: "local"}}}})
	t.Cleanup(h.Close)
	snap := h.Snapshot()
	if snap.Node != "" || snap.Nodes != nil || snap.Clustered() {
		t.Fatalf("a relay alone shows nodes: %q %+v", snap.Node, snap.Nodes)
	}
	if len(snap.Devices) != 1 || snap.Devices[0].Node != "" {
		t.Fatalf("a relay alone names its devices' node: %+v", snap.Devices)
	}
	sub := h.subscribe()
	t.Cleanup(func() { h.unsubscribe(sub) })
	h.resync(sub)
	h.sampleStats(&sampler{})
	if d := <-sub.ch; d.Nodes != nil {
		t.Fatalf("stats of a relay alone carry nodes: %+v", d.Nodes)
	}
}

// TestMetricsNodeLabel: on a node of a cluster every metric carries the
// node's id; alone, none carries a node label.
func TestMetricsNodeLabel(t *testing.T) {
	scrape := func(node string) string {
		h := newTestHub(t, Config{Node: node, MetricsOpen: true})
		rec := httptest.NewRecorder()
		h.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", PathMetrics, nil))
		return rec.Body.String()
	}
	m := scrape("n1")
	samples := 0
	for _, line := range strings.Split(m, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		samples++
		if !strings.Contains(line, `node="n1"`) {
			t.Errorf("a metric without the node label: %s", line)
		}
	}
	for _, want := range []string{`p2pd_devices{node="n1"} 0`, `p2pd_refusals_total{code="BUSY",node="n1"} 0`, `go_goroutines{node="n1"}`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if samples < 20 {
		t.Fatalf("only %d samples:\n%s", samples, m)
	}
	if m := scrape(""); strings.Contains(m, "node=") || !strings.Contains(m, "p2pd_devices 0\n") {
		t.Fatalf("metrics of a relay alone:\n%s", m)
	}
}

package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/p2prelay/p2prelay/admin"
	"github.com/p2prelay/p2prelay/admin/admintest"
)

func TestNodes(t *testing.T) {
	renewed := time.Now()
	leases := []admin.NodeLease{
		{ID: "n2", Address: "relay-2:9000", Started: renewed.Add(-3 * time.Hour), Renewed: renewed, Devices: 7, Messages: 1200},
		{ID: "n1", Address: "relay-1:9000", Started: renewed.Add(-time.Hour), Renewed: renewed, Devices: 3, Messages: 40},
	}
	env := admintest.Start(t, admin.Config{Node: "n1", Nodes: admin.NodeListerFunc(func(context.Context) ([]admin.NodeLease, error) {
		return leases, nil
	})})
	flags := []string{"--url", env.URL, "--token", env.Token}

	r := p2pctl(t, append([]string{"nodes"}, flags...)...)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 3 {
		t.Fatalf("nodes: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if f := strings.Fields(lines[0]); strings.Join(f, " ") != "NODE ADDRESS DEVICES MSG/S MESSAGES LEASE AGE UP" {
		t.Fatalf("header %q", lines[0])
	}
	if f := strings.Fields(lines[1]); len(f) != 8 || f[0] != "n1" || f[1] != "(serving)" || f[2] != "relay-1:9000" || f[3] != "3" || f[5] != "40" || f[7] != "1h" {
		t.Fatalf("n1's line %q", lines[1])
	}
	if f := strings.Fields(lines[2]); len(f) != 7 || f[0] != "n2" || f[1] != "relay-2:9000" || f[2] != "7" || f[4] != "1200" || f[6] != "3h" {
		t.Fatalf("n2's line %q", lines[2])
	}

	r = p2pctl(t, append([]string{"nodes", "--json"}, flags...)...)
	var nodes []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &nodes); r.code != 0 || err != nil || len(nodes) != 2 {
		t.Fatalf("nodes --json: exit %d, %v: %s", r.code, err, r.stdout)
	}
	for _, key := range []string{"id", "address", "devices", "messages", "messages_per_sec", "started", "renewed", "lease_age"} {
		if _, ok := nodes[0][key]; !ok {
			t.Errorf("node lacks %q: %v", key, nodes[0])
		}
	}
	if nodes[0]["id"] != "n1" || nodes[0]["self"] != true || nodes[1]["self"] != nil {
		t.Fatalf("nodes --json: %v", nodes)
	}

	// The devices list names their nodes on a cluster.
	r = p2pctl(t, append([]string{"devices"}, flags...)...)
	if r.code != 0 || !strings.HasSuffix(strings.Split(r.stdout, "\n")[0], "NODE") {
		t.Fatalf("devices on a cluster:\n%s", r.stdout)
	}
}

func TestNodesOfARelayAlone(t *testing.T) {
	env := relayWithDevices(t)
	flags := []string{"--url", env.URL, "--token", env.Token}
	r := p2pctl(t, append([]string{"nodes"}, flags...)...)
	if r.code != 0 || strings.TrimSpace(r.stdout) != alone {
		t.Fatalf("nodes of a relay alone: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = p2pctl(t, append([]string{"nodes", "--json"}, flags...)...)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "[]" {
		t.Fatalf("nodes --json of a relay alone: %q", r.stdout)
	}
	r = p2pctl(t, append([]string{"devices"}, flags...)...)
	if strings.Contains(r.stdout, "NODE") {
		t.Fatalf("devices of a relay alone show a node:\n%s", r.stdout)
	}
	r = p2pctl(t, append([]string{"device", "A"}, flags...)...)
	if r.code != 0 || strings.Contains(r.stdout, "NODE") {
		t.Fatalf("device of a relay alone shows a node:\n%s", r.stdout)
	}
}

package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
	"github.com/alicebob/miniredis/v2"

	"github.com/p2prelay/p2prelay/admin/adminapi"
	"github.com/p2prelay/p2prelay/admin/adminclient"
	"github.com/p2prelay/p2prelay/internal/testkit"
	"github.com/p2prelay/p2prelay/protocol"
)

const clusterToken = "p2pa_cluster-test-token-0123"

// startClusterNode serves p2pd as a node of the cluster on mr, with the
// command line a user would give it, until the test ends; it returns the
// node's URL.
func startClusterNode(t *testing.T, mr *miniredis.Miniredis, id string) string {
	t.Helper()
	var cli CLI
	parser, err := kong.New(&cli, kong.Name("p2pd"), kong.Vars{"version": "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parser.Parse([]string{"serve", "--redis", "redis://" + mr.Addr(), "--node-id", id, "--lease", "600ms",
		"--admin-token", clusterToken, "--resume-window", "0", "--shutdown-wait", "2s"}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cli.Serve.serve(ctx, ln, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("node %s: %v", id, err)
			}
		case <-time.After(2 * testkit.Wait):
			t.Errorf("node %s did not stop", id)
		}
	})
	return "http://" + ln.Addr().String()
}

func adminOf(t *testing.T, url string) *adminclient.Client {
	t.Helper()
	c, err := adminclient.NewClient(adminclient.ClientConfig{URL: url, Token: clusterToken})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// stateUntil reads the admin state of c until cond holds, or fails the
// test after testkit.Wait.
func stateUntil(t *testing.T, c *adminclient.Client, what string, cond func(*adminapi.Snapshot) bool) *adminapi.Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Wait)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last *adminapi.Snapshot
	for {
		snap, err := c.State(ctx)
		if err == nil {
			last = snap
			if cond(snap) {
				return snap
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within %s; last state %+v (err %v)", what, testkit.Wait, last, err)
		case <-tick.C:
		}
	}
}

func deviceIn(snap *adminapi.Snapshot, id string) (adminapi.Device, bool) {
	for _, d := range snap.Devices {
		if d.ID == id {
			return d, true
		}
	}
	return adminapi.Device{}, false
}

// TestAdminSideShowsTheWholeCluster: the admin side of one node lists the
// other node's devices with their node, the pairs across nodes and both
// nodes, follows the other node's events live, and kicks and unpairs a
// device the other node holds; each node's metrics carry its id.
func TestAdminSideShowsTheWholeCluster(t *testing.T) {
	mr := miniredis.RunT(t)
	u1 := startClusterNode(t, mr, "n1")
	u2 := startClusterNode(t, mr, "n2")
	a := testkit.Dial(t, u1, "A")
	b := testkit.Dial(t, u2, "B")
	testkit.Pair(t, a, b, "B", "A")
	c1 := adminOf(t, u1)

	snap := stateUntil(t, c1, "n1 to list both nodes, each with its device", func(s *adminapi.Snapshot) bool {
		return len(s.Nodes) == 2 && s.Nodes[0].Devices == 1 && s.Nodes[1].Devices == 1
	})
	if snap.Node != "n1" {
		t.Fatalf("serving node %q, want n1", snap.Node)
	}
	for i, want := range []struct {
		id, url string
		self    bool
	}{{"n1", u1, true}, {"n2", u2, false}} {
		n := snap.Nodes[i]
		if n.ID != want.id || "http://"+n.Address != want.url || n.Self != want.self || n.LeaseAge < 0 || n.LeaseAge > time.Second || n.Started.IsZero() {
			t.Errorf("node %d: %+v, want %s at %s (self %v)", i, n, want.id, want.url, want.self)
		}
	}
	for id, node := range map[string]string{"A": "n1", "B": "n2"} {
		if d, ok := deviceIn(snap, id); !ok || d.Node != node {
			t.Errorf("device %s: %+v, want it on %s", id, d, node)
		}
	}
	if len(snap.Pairs) != 1 || snap.Pairs[0].A != "A" || snap.Pairs[0].B != "B" {
		t.Fatalf("pairs %+v, want A ↔ B", snap.Pairs)
	}

	// Live: a device joining n2 reaches n1's stream with its node, and the
	// stats carry the nodes.
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Wait)
	defer cancel()
	sub := c1.Subscribe(ctx)
	defer sub.Close()
	synced, joined, statsNodes := false, false, false
	for u := range sub.Updates() {
		if u.Snapshot != nil && !synced {
			synced = true
			testkit.Dial(t, u2, "C")
		}
		for _, d := range u.Deltas {
			switch {
			case d.Kind == adminapi.KindDeviceConnected && d.ID == "C":
				if d.Device == nil || d.Device.Node != "n2" {
					t.Fatalf("C connected: %+v, want it on n2", d.Device)
				}
				joined = true
			case d.Kind == adminapi.KindStats && len(d.Nodes) == 2:
				statsNodes = true
			}
		}
		if joined && statsNodes {
			break
		}
	}
	if !joined || !statsNodes {
		t.Fatalf("n1's stream: C joined %v, nodes in the stats %v", joined, statsNodes)
	}

	// Commands from n1 on a device n2 holds.
	if err := c1.Unpair(ctx, "B"); err != nil {
		t.Fatalf("unpair B from n1: %v", err)
	}
	b.Next(protocol.EventUnregister)
	a.Next(protocol.EventUnregister)
	stateUntil(t, c1, "the pair to end", func(s *adminapi.Snapshot) bool { return len(s.Pairs) == 0 })
	if err := c1.Kick(ctx, "B"); err != nil {
		t.Fatalf("kick B from n1: %v", err)
	}
	if perr := b.ServerError(); perr.Code != protocol.CodeKicked {
		t.Fatalf("B was told %v, want KICKED", perr)
	}
	select {
	case <-b.Closed():
	case <-ctx.Done():
		t.Fatal("B was not disconnected")
	}
	stateUntil(t, c1, "B to be gone", func(s *adminapi.Snapshot) bool { _, ok := deviceIn(s, "B"); return !ok })
	if err := c1.Kick(ctx, "B"); protocol.CodeOf(err) != protocol.CodeOffline {
		t.Fatalf("kick of a device gone: %v, want OFFLINE", err)
	}

	// Each node's metrics carry its id.
	for node, url := range map[string]string{"n1": u1, "n2": u2} {
		req, _ := http.NewRequestWithContext(ctx, "GET", url+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+clusterToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if !strings.Contains(string(body), `p2pd_relayed_messages_total{node="`+node+`"}`) {
			t.Errorf("%s's metrics lack its label:\n%.500s", node, body)
		}
	}
}

package tui

import (
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/golden"

	"github.com/p2prelay/p2prelay/admin/adminapi"
)

// clusterNodes are the nodes of the cluster fixture, as of a stats delta.
func clusterNodes(devices1, devices2 int, rate float64) []adminapi.Node {
	return []adminapi.Node{
		{ID: "relay-1", Address: "10.0.0.1:9000", Self: true, Devices: devices1, Messages: 90, MessagesPerSec: rate,
			Started: t0.Add(-2 * time.Hour), Renewed: t0.Add(-400 * time.Millisecond), LeaseAge: 400 * time.Millisecond},
		{ID: "relay-2", Address: "10.0.0.2:9000", Devices: devices2, Messages: 37, MessagesPerSec: 1,
			Started: t0.Add(-time.Hour), Renewed: t0.Add(-900 * time.Millisecond), LeaseAge: 900 * time.Millisecond},
	}
}

// clusterFeed is the fixture seen from relay-1, a node of a cluster of
// two: its devices spread over both nodes.
func clusterFeed() chan adminapi.Update {
	snap := fixture()
	snap.Node = "relay-1"
	snap.Nodes = clusterNodes(3, 3, 0)
	for i := range snap.Devices {
		snap.Devices[i].Node = []string{"relay-1", "relay-2"}[i%2]
	}
	ds := fixtureDeltas()
	ds[0].Device.Node = "relay-2"
	for i := range ds {
		if ds[i].Kind == adminapi.KindStats {
			ds[i].Nodes = clusterNodes(3, 4, ds[i].Stats.MessagesPerSec-1)
		}
	}
	ch := make(chan adminapi.Update, 16)
	ch <- adminapi.Update{Status: adminapi.StatusConnecting}
	ch <- adminapi.Update{Status: adminapi.StatusLive, Snapshot: snap}
	ch <- adminapi.Update{Status: adminapi.StatusLive, Deltas: ds}
	return ch
}

func TestGoldenCluster(t *testing.T) {
	tm, _ := startTest(t, clusterFeed(), &fakeCommands{}, 110, 30)
	waitFor(t, tm, "golf could not pair")
	golden.RequireEqual(t, []byte(final(t, tm)))
}

// TestGoldenClusterNarrow: at 80x24 the nodes pane keeps the nodes and
// their devices, and tab reaches it after the event log.
func TestGoldenClusterNarrow(t *testing.T) {
	tm, _ := startTest(t, clusterFeed(), &fakeCommands{}, 80, 24)
	waitFor(t, tm, "golf could not pair")
	typeKeys(tm, "tab", "tab", "tab", "tab")
	golden.RequireEqual(t, []byte(final(t, tm)))
}

// TestNodesPaneFollowsTheCluster: the pane and the node column come with
// a cluster's snapshot and go with a relay alone's; a node that joins gets
// its row at the next stats.
func TestNodesPaneFollowsTheCluster(t *testing.T) {
	ch := clusterFeed()
	tm, m := startTest(t, ch, &fakeCommands{}, 110, 30)
	waitFor(t, tm, "golf could not pair")
	three := append(clusterNodes(3, 4, 0), adminapi.Node{ID: "relay-3", Address: "10.0.0.3:9000", Devices: 0})
	ch <- adminapi.Update{Status: adminapi.StatusLive, Deltas: []adminapi.Delta{{Seq: 16, Kind: adminapi.KindStats, Time: t0,
		Stats: &adminapi.Stats{Time: t0}, Nodes: three}}}
	waitFor(t, tm, "relay-3")
	ch <- adminapi.Update{Status: adminapi.StatusLive, Snapshot: fixture()}
	waitFor(t, tm, "synced: 6 devices")
	out := final(t, tm)
	if strings.Contains(out, "Nodes") || strings.Contains(out, "NODE") || m.focus >= len(m.panes()) {
		t.Fatalf("a relay alone shows nodes:\n%s", out)
	}
}

// TestDetailOfADeviceOnAnotherNode: the detail says which node holds the
// device, and that its traffic is that node's to show.
func TestDetailOfADeviceOnAnotherNode(t *testing.T) {
	ch, cmds := clusterFeed(), &fakeCommands{}
	tm, _ := startTest(t, ch, cmds, 120, 30)
	waitFor(t, tm, "golf could not pair")
	typeKeys(tm, "j", "enter") // bravo, on relay-2
	waitFor(t, tm, "reading what the relay knows")
	det := &adminapi.DeviceDetail{Device: device("bravo", 4*time.Minute, "alpha"), Time: t0}
	det.Node = "relay-2"
	ch <- adminapi.Update{Status: adminapi.StatusLive, Detail: det}
	waitFor(t, tm, "point p2pctl at that node")
	out := final(t, tm)
	for _, want := range []string{"on relay-2", "held by node relay-2"} {
		if !strings.Contains(out, want) {
			t.Errorf("the detail lacks %q:\n%s", want, out)
		}
	}
	if got := cmds.Calls(); len(got) != 1 || got[0] != "watch bravo" {
		t.Fatalf("commands %v", got)
	}
}

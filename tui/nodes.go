package tui

import (
	"fmt"

	"github.com/charmbracelet/x/ansi"

	"github.com/p2prelay/p2prelay/admin/adminapi"
)

// nodesPane lists the nodes of a cluster, as their leases say: shown only
// when the relay is a node of a cluster, beside the event log.
type nodesPane struct {
	frame[string]
}

func newNodesPane(c Common) *nodesPane { return &nodesPane{frame: frame[string]{Common: c}} }

// nodeCols keep the node and its devices however narrow.
var nodeCols = []column{
	{key: "node", title: "NODE"}, {key: "devices", title: "DEVS", width: 5, min: 4},
	{key: "rate", title: "MSG/S", width: 6, drop: 2}, {key: "lease", title: "LEASE", width: 5, drop: 3},
	{key: "addr", title: "ADDRESS", width: 21, drop: 4},
}

// selfMark follows the id of the node serving the admin side, as the
// pane's title says.
const selfMark = " *"

// Refresh takes the nodes, sorted by id; the id filter is the devices'.
func (p *nodesPane) Refresh() {
	st := p.data.state
	if st == nil {
		p.rows.SetItems(nil)
		return
	}
	ids := make([]string, len(st.Nodes))
	for i, n := range st.Nodes {
		ids[i] = n.ID
	}
	p.rows.SetItems(ids)
}

// changed reports whether nodes are not the nodes the rows show: one
// joined or left.
func (p *nodesPane) changed(nodes []adminapi.Node) bool {
	if len(nodes) != len(p.rows.items) {
		return true
	}
	for i, n := range nodes {
		if n.ID != p.rows.items[i] {
			return true
		}
	}
	return false
}

func (p *nodesPane) View() string {
	d := p.data
	byID := map[string]*adminapi.Node{}
	need := 8
	if d.state != nil {
		for i := range d.state.Nodes {
			n := &d.state.Nodes[i]
			byID[n.ID] = n
			need = max(need, ansi.StringWidth(nodeName(n)))
		}
	}
	cols := fitColumns(nodeCols, p.Width-2-markerWidth, min(need, 32))
	empty := "reading the nodes…"
	if d.state == nil {
		empty = "waiting for the relay…"
	}
	return p.render(fmt.Sprintf("Nodes %d (* here)", len(p.rows.items)), "  "+titles(cols), empty, func(i int) string {
		n := byID[p.rows.items[i]]
		if n == nil {
			return ""
		}
		return row(cols, func(key string) string {
			switch key {
			case "node":
				return nodeName(n)
			case "devices":
				return thousands(n.Devices)
			case "rate":
				return d.rate(n.MessagesPerSec)
			case "lease":
				return fmt.Sprintf("%.1fs", n.LeaseAge.Seconds())
			case "addr":
				return n.Address
			}
			return ""
		})
	})
}

// nodeName is a node's id, marked when it serves the admin side.
func nodeName(n *adminapi.Node) string {
	if n.Self {
		return n.ID + selfMark
	}
	return n.ID
}

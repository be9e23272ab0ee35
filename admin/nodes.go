package admin

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/p2prelay/p2prelay/admin/adminapi"
)

// NodeLease is what a cluster node's lease says of it.
type NodeLease struct {
	ID       string
	Address  string
	Started  time.Time
	Renewed  time.Time
	Devices  int
	Messages uint64 // messages it relayed since it started
}

// NodeLister lists the live nodes of a cluster, from their leases. p2pd
// adapts package cluster's Node to it.
type NodeLister interface {
	Nodes(ctx context.Context) ([]NodeLease, error)
}

// NodeListerFunc adapts a function to a NodeLister.
type NodeListerFunc func(ctx context.Context) ([]NodeLease, error)

// Nodes calls f(ctx).
func (f NodeListerFunc) Nodes(ctx context.Context) ([]NodeLease, error) { return f(ctx) }

// nodeReader reads the cluster's nodes and works out their rates from one
// reading to the next. Its zero value is ready; readings are serialised.
type nodeReader struct {
	mu   sync.Mutex // guards prev
	prev map[string]adminapi.Node
}

// read lists the nodes, sorted by id, with self marked and each node's
// messages a second between the two renewals of its that were read last
// (a node whose lease was not renewed since keeps its rate). LeaseAge is
// left for the caller, as of when it sends them.
func (r *nodeReader) read(ctx context.Context, lister NodeLister, self string) ([]adminapi.Node, error) {
	leases, err := lister.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]adminapi.Node, 0, len(leases))
	next := make(map[string]adminapi.Node, len(leases))
	for _, l := range leases {
		n := adminapi.Node{ID: l.ID, Address: l.Address, Self: l.ID == self, Devices: l.Devices, Messages: l.Messages,
			Started: l.Started, Renewed: l.Renewed}
		if p, ok := r.prev[l.ID]; ok && p.Started.Equal(l.Started) {
			switch dt := l.Renewed.Sub(p.Renewed).Seconds(); {
			case dt > 0:
				n.MessagesPerSec = rate(p.Messages, l.Messages, dt)
			default:
				n.MessagesPerSec = p.MessagesPerSec
			}
		}
		next[l.ID] = n
		out = append(out, n)
	}
	r.prev = next
	slices.SortFunc(out, func(a, b adminapi.Node) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// nodesAt returns a copy of nodes with their lease ages as of now; nil for
// nil.
func nodesAt(nodes []adminapi.Node, now time.Time) []adminapi.Node {
	if nodes == nil {
		return nil
	}
	out := slices.Clone(nodes)
	for i := range out {
		out[i].LeaseAge = max(now.Sub(out[i].Renewed), 0)
	}
	return out
}

// readNodes reads the cluster's nodes and keeps them for the snapshots and
// the stats deltas; on a relay alone it does nothing. A reading may take
// half the stats interval, lest a slow Redis hold the counters up; a
// failed one keeps the last, and is logged once until one succeeds again.
func (h *Hub) readNodes() {
	if h.cfg.Nodes == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.StatsInterval/2)
	defer cancel()
	nodes, err := h.nodeReader.read(ctx, h.cfg.Nodes, h.cfg.Node)
	if err != nil {
		if !h.nodesFailing.Swap(true) {
			h.log.Warn("cannot read the cluster's nodes; the nodes view keeps the last reading", "err", err)
		}
		return
	}
	h.nodesFailing.Store(false)
	h.nodes.Store(&nodes)
}

// clusterNodes returns the nodes as last read, with their lease ages as of
// now: nil on a relay alone, or before any reading succeeded.
func (h *Hub) clusterNodes(now time.Time) []adminapi.Node {
	if p := h.nodes.Load(); p != nil {
		return nodesAt(*p, now)
	}
	return nil
}

// Package cluster runs p2pd on several nodes sharing Redis: a Store whose
// every method is one atomic Lua script (store.go), and a Node that carries
// envelopes between nodes over Redis pub/sub, holds the node's lease, reaps
// the devices of nodes that die, and fences the node when it cannot reach
// Redis.
//
// Keys and channels, under "{prefix}:" as the Store's (default prefix
// "p2p"; the braces keep every key in one hash slot):
//
//	nodes            set of the nodes that joined
//	lease:NODE       the node's lease: JSON NodeInfo, expiring after Lease
//	reap:NODE        taken by the one node that reaps a dead node
//	bus:NODE         the node's pub/sub channel
//	events           every node's relay events, for the admin sides
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/p2prelay/p2prelay/server"
)

// Defaults of NodeConfig.
const (
	DefaultPrefix = "p2p"
	DefaultLease  = 3 * time.Second
)

// NodeConfig configures a Node.
type NodeConfig struct {
	// Client reaches Redis. The caller keeps it and closes it after Close.
	Client redis.UniversalClient
	// Prefix of every key and channel, the Store's: "{Prefix}:". Default
	// DefaultPrefix.
	Prefix string
	// ID names the node; unique in the cluster.
	ID string
	// Address is where the node serves devices, shown in the nodes view.
	Address string
	// Lease is how long the node counts as alive without renewing: it
	// renews every third of it, and the others reap its devices when it
	// runs out. Default DefaultLease.
	Lease time.Duration
	// OnFence and OnUnfence run when the node loses Redis beyond its lease
	// (it must stop serving devices) and when it is back.
	OnFence, OnUnfence func()
	// Logger receives the node's logs. Default: discard.
	Logger *slog.Logger
}

// NodeInfo is what a node's lease says of it.
type NodeInfo struct {
	ID      string    `json:"id"`
	Address string    `json:"address"`
	Started time.Time `json:"started"`
	Renewed time.Time `json:"renewed"`
	Devices int       `json:"devices"`
	// Messages is how many messages the node relayed since it started.
	Messages uint64 `json:"messages"`
}

// Node is one relay node's part in the cluster: a server.Bus, its lease,
// the reaping of dead nodes. Create it with NewNode, give it to the relay
// as its Bus, then Start it with the relay; Close ends it.
type Node struct {
	cfg    NodeConfig
	rdb    redis.UniversalClient
	log    *slog.Logger
	relay  *server.Relay
	store  NodeDevices
	info   NodeInfo
	cancel context.CancelFunc
	done   sync.WaitGroup

	mu       sync.Mutex // guards queues, flushers, drained
	queues   map[string]*outbox
	flushers int           // outboxes being sent
	drained  chan struct{} // closed when flushers drops to 0, for Close

	fenced   atomic.Bool
	lastLive atomic.Int64 // Unix ns of the last renewal that reached Redis
	dead     sync.Map     // node id -> struct{}: nodes known dead
	alive    sync.Map     // node id -> struct{}: other nodes seen alive, until they are dead
	stats    func() (devices int, messages uint64)
	events   server.Observer // where the other nodes' events go; nil: nowhere
}

// outbox is the queue of envelopes for one node, sent in order by one
// goroutine, in pipelined batches.
type outbox struct {
	mu      sync.Mutex // guards pending, running
	pending [][]byte
	running bool
}

// NewNode returns a Node. It fails for a config without a client or id.
func NewNode(cfg NodeConfig) (*Node, error) {
	if cfg.Client == nil || cfg.ID == "" {
		return nil, errors.New("cluster: a node needs a Redis client and an id")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Node{cfg: cfg, rdb: cfg.Client, log: cfg.Logger, queues: make(map[string]*outbox)}, nil
}

func (n *Node) key(parts ...string) string {
	k := "{" + n.cfg.Prefix + "}"
	for _, p := range parts {
		k += ":" + p
	}
	return k
}

// Send queues e for node: envelopes for one node go out in order, on one
// connection.
func (n *Node) Send(node string, e server.Envelope) {
	b, err := appendEnvelope(nil, e)
	if err != nil {
		n.log.Error("envelope not sent: cannot encode it", "to", node, "kind", e.Kind, "err", err)
		return
	}
	n.publish(n.key("bus", node), b)
}

// publish queues b for channel: what is published on one channel goes out
// in order, on one connection, in pipelined batches.
func (n *Node) publish(channel string, b []byte) {
	n.mu.Lock()
	q := n.queues[channel]
	if q == nil {
		q = &outbox{}
		n.queues[channel] = q
	}
	n.mu.Unlock()
	q.mu.Lock()
	q.pending = append(q.pending, b)
	start := !q.running
	q.running = true
	q.mu.Unlock()
	if start {
		n.mu.Lock()
		n.flushers++
		n.mu.Unlock()
		go n.flush(channel, q)
	}
}

// Observer returns the Observer for the node's relay: it hands each event
// to local, and to the other nodes, whose relays' events reach local too,
// so that any node's admin side follows the whole cluster. Events from one
// node arrive in order; between nodes, in the order Redis saw them.
func (n *Node) Observer(local server.Observer) server.Observer {
	n.events = local
	return server.ObserverFunc(func(e server.Event) {
		local.OnEvent(e)
		b, err := json.Marshal(e)
		if err == nil {
			n.publish(n.key("events"), b)
		}
	})
}

// maxBatch bounds the envelopes of one pipelined batch.
const maxBatch = 256

// flush publishes a channel's queue until it is empty, in batches.
func (n *Node) flush(channel string, q *outbox) {
	for {
		q.mu.Lock()
		batch := q.pending
		if len(batch) > maxBatch {
			batch, q.pending = batch[:maxBatch:maxBatch], batch[maxBatch:]
		} else {
			q.pending = nil
		}
		if len(batch) == 0 {
			q.running = false
			q.mu.Unlock()
			n.mu.Lock()
			n.flushers--
			if n.flushers == 0 && n.drained != nil {
				close(n.drained)
				n.drained = nil
			}
			n.mu.Unlock()
			return
		}
		q.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.Lease)
		pipe := n.rdb.Pipeline()
		for _, b := range batch {
			pipe.Publish(ctx, channel, b)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			n.log.Warn("messages to other nodes lost: Redis did not take them", "channel", channel, "count", len(batch), "err", err)
		}
		cancel()
	}
}

// NodeDevices lists the devices a node holds, as the shared Store knows
// them (the Redis Store does).
type NodeDevices interface {
	DevicesOn(node string) ([]server.Device, error)
}

// Start joins the cluster with relay, which must use n as its Bus and
// store as its Store: it subscribes to the node's channel, takes its lease,
// and watches the other nodes' leases. stats, when set, says the node's
// devices and messages for its lease.
func (n *Node) Start(ctx context.Context, relay *server.Relay, store NodeDevices, stats func() (int, uint64)) error {
	n.relay, n.store, n.stats = relay, store, stats
	now := time.Now()
	n.info = NodeInfo{ID: n.cfg.ID, Address: n.cfg.Address, Started: now}
	if err := n.renew(ctx); err != nil {
		return fmt.Errorf("cluster: join: %w", err)
	}
	sub := n.rdb.Subscribe(ctx, n.key("bus", n.cfg.ID), n.key("events"))
	if _, err := sub.Receive(ctx); err != nil {
		_ = sub.Close()
		return fmt.Errorf("cluster: subscribe: %w", err)
	}
	ctx, n.cancel = context.WithCancel(context.Background())
	n.done.Add(2)
	go n.receive(ctx, sub)
	go n.watch(ctx)
	n.log.Info("joined the cluster", "node", n.cfg.ID, "lease", n.cfg.Lease)
	return nil
}

// receive hands every envelope of the node's channel to the relay, in
// order.
func (n *Node) receive(ctx context.Context, sub *redis.PubSub) {
	defer n.done.Done()
	defer sub.Close()
	ch := sub.Channel(redis.WithChannelSize(4096))
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			if m.Channel == n.key("events") {
				n.otherEvent(m.Payload)
				continue
			}
			e, err := parseEnvelope([]byte(m.Payload))
			if err != nil {
				n.log.Warn("a malformed envelope dropped", "err", err)
				continue
			}
			n.relay.Receive(e)
		}
	}
}

// otherEvent hands another node's relay event to the local observer.
func (n *Node) otherEvent(payload string) {
	var e server.Event
	if n.events == nil || json.Unmarshal([]byte(payload), &e) != nil || e.Node == n.cfg.ID {
		return
	}
	n.events.OnEvent(e)
}

// watch renews the lease, fences the node when it cannot, and reaps the
// nodes whose leases ran out.
func (n *Node) watch(ctx context.Context) {
	defer n.done.Done()
	t := time.NewTicker(n.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, n.cfg.Lease/3)
		err := n.renew(rctx)
		if err == nil {
			n.checkNodes(rctx)
		}
		cancel()
		switch {
		case err == nil && n.fenced.Swap(false):
			n.log.Info("Redis is back: the node serves again", "node", n.cfg.ID)
			if n.cfg.OnUnfence != nil {
				n.cfg.OnUnfence()
			}
		case err != nil && time.Since(time.Unix(0, n.lastLive.Load())) > n.cfg.Lease && !n.fenced.Swap(true):
			n.log.Warn("Redis out of reach beyond the lease: the node stops serving until it is back", "node", n.cfg.ID, "err", err)
			if n.cfg.OnFence != nil {
				n.cfg.OnFence()
			}
		}
	}
}

// renew writes the node's lease.
func (n *Node) renew(ctx context.Context) error {
	n.info.Renewed = time.Now()
	if n.stats != nil {
		n.info.Devices, n.info.Messages = n.stats()
	}
	b, _ := json.Marshal(n.info)
	pipe := n.rdb.TxPipeline()
	pipe.Set(ctx, n.key("lease", n.cfg.ID), b, n.cfg.Lease)
	added := pipe.SAdd(ctx, n.key("nodes"), n.cfg.ID)
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	if added.Val() == 1 && n.lastLive.Load() != 0 && !n.fenced.Load() {
		// The cluster did not know this node any more: Redis lost its
		// state (a restart without persistence), or the others reaped it.
		// Its devices are not in the store: they must connect again.
		n.log.Warn("the cluster forgot this node (Redis restarted, or the node was taken for dead): its devices reconnect", "node", n.cfg.ID)
		if n.cfg.OnFence != nil {
			n.cfg.OnFence()
		}
		if n.cfg.OnUnfence != nil {
			n.cfg.OnUnfence()
		}
	}
	n.lastLive.Store(time.Now().UnixNano())
	return nil
}

// checkNodes finds the nodes whose leases ran out: this node fails what it
// awaits from them, and one node reaps their devices.
func (n *Node) checkNodes(ctx context.Context) {
	ids, err := n.rdb.SMembers(ctx, n.key("nodes")).Result()
	if err != nil {
		return
	}
	listed := make(map[string]bool, len(ids))
	for _, id := range ids {
		listed[id] = true
		if id == n.cfg.ID {
			continue
		}
		alive, err := n.rdb.Exists(ctx, n.key("lease", id)).Result()
		if err != nil {
			return
		}
		if alive == 1 {
			n.dead.Delete(id)
			n.alive.Store(id, struct{}{})
			continue
		}
		n.gone(id, "its lease is gone: it stopped, or could not renew it")
		n.reap(ctx, id)
	}
	// A node seen alive that is no longer listed was reaped by another
	// node between two checks of this one: it is gone all the same.
	n.alive.Range(func(k, _ any) bool {
		if id := k.(string); !listed[id] {
			n.gone(id, "a node was reaped by another")
		}
		return true
	})
}

// gone tells the relay, once, that node id left the cluster: it fails what
// it awaits from the node.
func (n *Node) gone(id, why string) {
	n.alive.Delete(id)
	if _, known := n.dead.LoadOrStore(id, struct{}{}); !known {
		n.log.Warn("a node left the cluster", "node", id, "why", why)
		n.relay.NodeGone(id)
	}
}

// reap removes a dead node's devices, if this node wins the right to.
func (n *Node) reap(ctx context.Context, id string) {
	won, err := n.rdb.SetNX(ctx, n.key("reap", id), n.cfg.ID, 10*n.cfg.Lease).Result()
	if err != nil || !won {
		return
	}
	devs, err := n.store.DevicesOn(id)
	if err != nil {
		_ = n.rdb.Del(ctx, n.key("reap", id)).Err()
		return
	}
	for _, d := range devs {
		n.relay.Reap(d)
	}
	_ = n.rdb.SRem(ctx, n.key("nodes"), id).Err()
	n.log.Info("reaped the devices of a node that left", "node", id, "devices", len(devs))
}

// OnFence sets what runs when the node loses Redis beyond its lease, and
// when it is back (NodeConfig.OnFence and OnUnfence). Call it before
// Start.
func (n *Node) OnFence(fence, unfence func()) {
	n.cfg.OnFence, n.cfg.OnUnfence = fence, unfence
}

// Fenced reports whether the node is cut off from Redis.
func (n *Node) Fenced() bool { return n.fenced.Load() }

// Nodes lists the nodes of the cluster that hold a lease.
func (n *Node) Nodes(ctx context.Context) ([]NodeInfo, error) {
	ids, err := n.rdb.SMembers(ctx, n.key("nodes")).Result()
	if err != nil {
		return nil, err
	}
	var out []NodeInfo
	for _, id := range ids {
		b, err := n.rdb.Get(ctx, n.key("lease", id)).Bytes()
		if err != nil {
			continue
		}
		var info NodeInfo
		if json.Unmarshal(b, &info) == nil {
			out = append(out, info)
		}
	}
	return out, nil
}

// Close leaves the cluster: the lease is given up, so that the others
// reap what is left of this node's devices at once rather than after the
// lease. Call it after the relay's Shutdown has handed devices over.
func (n *Node) Close(ctx context.Context) error {
	if n.cancel != nil {
		n.cancel()
	}
	n.done.Wait()
	// What the relay sent last (the links of the devices it handed over,
	// above all) goes out before the lease: a peer's node that missed it
	// would keep sending to this node, gone.
	n.mu.Lock()
	var drained chan struct{}
	if n.flushers > 0 {
		if n.drained == nil {
			n.drained = make(chan struct{})
		}
		drained = n.drained
	}
	n.mu.Unlock()
	if drained != nil {
		wait := time.NewTimer(n.cfg.Lease)
		select {
		case <-drained:
		case <-ctx.Done():
		case <-wait.C:
			n.log.Warn("node left with messages to other nodes unsent")
		}
		wait.Stop()
	}
	return n.rdb.Del(ctx, n.key("lease", n.cfg.ID)).Err()
}

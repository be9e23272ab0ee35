package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/p2prelay/p2prelay/admin"
	"github.com/p2prelay/p2prelay/cluster"
	"github.com/p2prelay/p2prelay/server"
	"github.com/p2prelay/p2prelay/server/socketio"
)

// ClusterFlags make p2pd a node of a cluster sharing Redis.
type ClusterFlags struct {
	Redis       string        `help:"Join a cluster of p2pd nodes sharing this Redis: redis://[user:password@]host:port[/db] or rediss:// for TLS. Without it, one node keeps everything in memory." env:"P2PD_REDIS" placeholder:"URL"`
	NodeID      string        `help:"This node's id in the cluster (default: random at each start, shown in the logs)." env:"P2PD_NODE_ID"`
	RedisPrefix string        `help:"Prefix of the cluster's keys in Redis: clusters sharing one Redis need their own." default:"p2p" env:"P2PD_REDIS_PREFIX"`
	Lease       time.Duration `help:"How long a node counts as alive without renewing its lease in Redis: past it, the others take over its devices, and a node that cannot reach Redis stops serving." default:"3s" env:"P2PD_LEASE"`
}

func (f *ClusterFlags) validate() error {
	if f.Redis == "" {
		if f.NodeID != "" {
			return fmt.Errorf("--node-id needs --redis")
		}
		return nil
	}
	if _, err := redis.ParseURL(f.Redis); err != nil {
		return fmt.Errorf("--redis: %w", err)
	}
	if f.Lease < 300*time.Millisecond {
		return fmt.Errorf("--lease must be at least 300ms, got %s", f.Lease)
	}
	if strings.ContainsAny(f.NodeID, " {}:") {
		return fmt.Errorf("--node-id %q: no spaces, braces or colons", f.NodeID)
	}
	return nil
}

// redisLog sends the Redis client's own messages (a failed dial, say) to
// p2pd's log, at debug level: the node says what matters itself (fenced,
// back).
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(_ context.Context, format string, v ...any) {
	l.log.Debug("redis: " + fmt.Sprintf(format, v...))
}

// clusterNode is this node's part in a cluster; nil without --redis.
type clusterNode struct {
	client *redis.Client
	store  *cluster.Store
	node   *cluster.Node
	id     string
}

// join connects to Redis and prepares the node, serving devices at
// address; relayCfg takes its store and bus, and observer must wrap the
// relay's observer. Start must follow once the relay exists.
func (f *ClusterFlags) join(ctx context.Context, relayCfg *server.Config, address string, log *slog.Logger) (*clusterNode, error) {
	if f.Redis == "" {
		return nil, nil
	}
	opts, err := redis.ParseURL(f.Redis)
	if err != nil {
		return nil, fmt.Errorf("--redis: %w", err)
	}
	redis.SetLogger(redisLog{log})
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = f.Lease/3, f.Lease/3, f.Lease/3
	// Each Store call is bounded by its context: the relay holds its lock
	// across some of them.
	opts.ContextTimeoutEnabled = true
	client := redis.NewClient(opts)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := client.Ping(pctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("--redis: cannot reach %s: %w", opts.Addr, err)
	}
	id := f.NodeID
	if id == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		id = "node-" + hex.EncodeToString(b)
	}
	c := &clusterNode{client: client, id: id}
	c.store = cluster.NewStore(client, cluster.StoreOptions{Prefix: f.RedisPrefix, Logger: log, Timeout: f.Lease / 3})
	node, err := cluster.NewNode(cluster.NodeConfig{Client: client, Prefix: f.RedisPrefix, ID: id, Address: address, Lease: f.Lease, Logger: log})
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	c.node = node
	relayCfg.Store, relayCfg.Node, relayCfg.Bus = c.store, id, node
	log.Info("cluster node", "node", id, "redis", opts.Addr, "prefix", f.RedisPrefix)
	return c, nil
}

// observer returns the relay's observer: local, which on a node of a
// cluster also hears the other nodes' events, as the others hear this
// one's.
func (c *clusterNode) observer(local server.Observer) server.Observer {
	if c == nil {
		return local
	}
	return c.node.Observer(local)
}

// nodes lists the cluster's live nodes for the admin side.
func (c *clusterNode) nodes(ctx context.Context) ([]admin.NodeLease, error) {
	infos, err := c.node.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]admin.NodeLease, len(infos))
	for i, n := range infos {
		out[i] = admin.NodeLease{ID: n.ID, Address: n.Address, Started: n.Started, Renewed: n.Renewed, Devices: n.Devices, Messages: n.Messages}
	}
	return out, nil
}

// advertised is the address a node shows in the nodes view: where it
// listens, with the machine's name for an unspecified host (":9000").
func advertised(addr net.Addr) string {
	s := addr.String()
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return s
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if name, err := os.Hostname(); err == nil && name != "" {
			return net.JoinHostPort(name, port)
		}
	}
	return s
}

// start joins the cluster with the service's relay: a node that loses
// Redis stops serving devices until it is back.
func (c *clusterNode) start(ctx context.Context, svc *socketio.Service) error {
	if c == nil {
		return nil
	}
	c.node.OnFence(func() {
		svc.SetAvailable(false)
		svc.Relay.Fence()
	}, func() {
		svc.Relay.Unfence()
		svc.SetAvailable(true)
	})
	stats := func() (int, uint64) {
		st := svc.Relay.Stats()
		return svc.Relay.LocalDevices(), st.Messages
	}
	return c.node.Start(ctx, svc.Relay, c.store, stats)
}

// handOver keeps the node in the cluster after its relay shut down, while
// its devices, which were told to reconnect, come back on other nodes and
// ask for what it held for them: until none is left here, the window
// passes, or ctx ends.
func (c *clusterNode) handOver(ctx context.Context, relay *server.Relay, window time.Duration) {
	if c == nil {
		return
	}
	deadline := time.NewTimer(window)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for relay.LocalDevices() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-tick.C:
		}
	}
}

// leave gives the node's lease up and closes the client, after the relay's
// shutdown: the others take what is left over at once.
func (c *clusterNode) leave(ctx context.Context) {
	if c == nil {
		return
	}
	_ = c.node.Close(ctx)
	_ = c.client.Close()
}

// Package admin is the relay's control-center side: a hub that turns the
// relay's events into an ordered stream (a snapshot, then deltas with
// sequence numbers) for any number of subscribers, the socket.io namespace
// and HTTP endpoints that serve it behind an admin token, and Prometheus
// metrics. Its wire types are package adminapi's; the Go client that
// p2pctl uses is package adminclient.
//
// The relay publishes server.Events to the Hub (a server.Observer); the Hub
// never blocks the relay: each subscriber has a bounded buffer, and one that
// falls behind is dropped and resynced from a fresh snapshot.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/p2prelay/p2prelay/admin/adminapi"
	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server"
)

// Defaults for Config's zero values.
const (
	DefaultBuffer        = 4096
	DefaultBatch         = 256
	DefaultStatsInterval = time.Second
	DefaultAckTimeout    = 30 * time.Second
	// DefaultTrafficBuffer is how much watched traffic may wait for one
	// subscriber.
	DefaultTrafficBuffer = 1024
	// DefaultAuthFailureRate and DefaultAuthFailureBurst bound the wrong
	// admin tokens one address may try: a burst, then one a second.
	DefaultAuthFailureRate  = 1.0
	DefaultAuthFailureBurst = 10
)

// Config configures a Hub.
type Config struct {
	// Token is the admin token every admin surface requires. Required: use
	// GenerateToken when the operator gave none.
	Token string
	// Logger receives structured logs. Default: a logger that discards.
	Logger *slog.Logger
	// Buffer is how many deltas may wait for one subscriber; one that falls
	// further behind is resynced with a fresh snapshot. Default DefaultBuffer.
	Buffer int
	// Batch is the most deltas sent in one message. Default DefaultBatch.
	Batch int
	// StatsInterval is how often the counters are sent. Default one second.
	StatsInterval time.Duration
	// AckTimeout is how long a subscriber has to acknowledge a message
	// before it is disconnected. Default DefaultAckTimeout.
	AckTimeout time.Duration
	// MetricsOpen serves /metrics without the admin token.
	MetricsOpen bool
	// WatchRate bounds the traffic a watched device reports, per second
	// (server.Relay.Watch). Default server.DefaultWatchRate.
	WatchRate int
	// TrafficBuffer is how much watched traffic may wait for one
	// subscriber; the rest is counted as lost. Default DefaultTrafficBuffer.
	TrafficBuffer int
	// AuthFailureRate and AuthFailureBurst bound the wrong admin tokens one
	// address may present, per second and at once, on the stream and over
	// HTTP together; past them its attempts are refused RATE_LIMITED
	// without their token being looked at. Defaults DefaultAuthFailureRate
	// and DefaultAuthFailureBurst.
	AuthFailureRate  float64
	AuthFailureBurst int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Node is the id of the cluster node the hub serves, "" for a relay
	// alone: every metric carries it as the label node, and the admin side
	// names it (adminapi.Snapshot.Node) and marks it among the nodes.
	Node string
	// Nodes lists the cluster's live nodes, read once a second for the
	// nodes view (the snapshots and the stats deltas); nil for a relay
	// alone.
	Nodes NodeLister
}

func (c Config) withDefaults() (Config, error) {
	if err := ValidateToken(c.Token); err != nil {
		return c, err
	}
	if c.Buffer < 0 || c.Batch < 0 || c.StatsInterval < 0 || c.AckTimeout < 0 || c.WatchRate < 0 ||
		c.TrafficBuffer < 0 || c.AuthFailureRate < 0 || c.AuthFailureBurst < 0 {
		return c, errors.New("admin: buffer, batch, stats interval, ack timeout, watch rate, traffic buffer and auth failure limits must not be negative")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Buffer == 0 {
		c.Buffer = DefaultBuffer
	}
	if c.Batch == 0 {
		c.Batch = DefaultBatch
	}
	if c.StatsInterval == 0 {
		c.StatsInterval = DefaultStatsInterval
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.WatchRate == 0 {
		c.WatchRate = server.DefaultWatchRate
	}
	if c.TrafficBuffer == 0 {
		c.TrafficBuffer = DefaultTrafficBuffer
	}
	if c.AuthFailureRate == 0 {
		c.AuthFailureRate = DefaultAuthFailureRate
	}
	if c.AuthFailureBurst == 0 {
		c.AuthFailureBurst = DefaultAuthFailureBurst
	}
	return c, nil
}

// Source is what the hub reads from and commands: *server.Relay. The hub
// assumes it is the only one watching the relay's devices (Watch).
type Source interface {
	Devices() []server.DeviceInfo
	Pairs() []server.PairInfo
	Stats() server.Stats
	Kick(id string) error
	Unpair(id string) (server.Pair, error)
	Detail(id string) (server.DeviceDetail, bool)
	Watch(id string, perSecond int, fn func(server.Traffic)) (stop func(), err error)
}

// Hub fans the relay's events out to admin subscribers as one ordered
// stream. It is a server.Observer: pass it as server.Config.Observer, then
// call Start with the relay. The caller must call Close.
//
// How the stream stays coherent: the hub numbers every delta under its
// lock. A (re)sync reads the current number S under that same lock, clears
// the subscriber's buffer at that instant, and only then reads the relay's
// state. The relay publishes each event after it changed its state, so every
// change numbered S or lower is in the snapshot; the buffer then holds
// exactly the deltas numbered S+1 onwards. Changes made while the snapshot
// is read may be in it and also arrive as deltas; adminapi.State.Apply is
// idempotent for them, so snapshot plus deltas in order ends at the
// relay's state.
// Reading the relay outside the lock keeps a 10,000-device snapshot from
// ever holding up the relay's goroutines in OnEvent.
type Hub struct {
	cfg   Config
	log   *slog.Logger
	token tokenHash

	src   atomic.Pointer[Source]         // set once, by Start
	stats atomic.Pointer[adminapi.Stats] // the latest counters, with rates

	mu   sync.Mutex // guards seq and subs
	seq  uint64
	subs map[*subscriber]struct{}

	nsubs         atomic.Int64
	resyncs       atomic.Uint64
	authFailures  [2]atomic.Uint64 // by surface: socket, http
	authThrottled [2]atomic.Uint64 // by surface: refused unchecked, over the address's budget
	auth          *authThrottle

	watchMu   sync.Mutex // guards watches, and each deviceWatch's stop
	watches   map[string]*deviceWatch
	nwatches  atomic.Int64  // len(watches), read without the lock
	watchWake chan struct{} // asks the ticker to refresh the watches now

	refusals atomic.Pointer[map[string]uint64] // the devices' refusal counts at the last sample (read-only)

	nodeReader   nodeReader
	nodes        atomic.Pointer[[]adminapi.Node] // the cluster's nodes at the last reading (read-only)
	nodesFailing atomic.Bool                     // the last reading of the nodes failed

	reg    *prometheus.Registry
	regr   prometheus.Registerer // reg, with the node label on a node of a cluster
	closed chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
}

// subscriber is one consumer of the stream.
type subscriber struct {
	ch      chan adminapi.Delta
	stale   atomic.Bool   // set when ch overflowed: the subscriber needs a snapshot
	wake    chan struct{} // signalled when stale is set
	counted bool          // in Hub.nsubs: it had its first snapshot. Guarded by Hub.mu.
	watches subscriberWatches
}

// New returns a Hub. It fails for a missing or unusable token.
func New(cfg Config) (*Hub, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	h := &Hub{
		cfg:       cfg,
		log:       cfg.Logger,
		token:     hashToken(cfg.Token),
		subs:      make(map[*subscriber]struct{}),
		watches:   make(map[string]*deviceWatch),
		watchWake: make(chan struct{}, 1),
		closed:    make(chan struct{}),
	}
	h.auth = newAuthThrottle(cfg.AuthFailureRate, cfg.AuthFailureBurst, h.log)
	if len(cfg.Token) < MinTokenLength {
		h.log.Warn("the admin token is short; use at least 16 random characters", "length", len(cfg.Token))
	}
	h.reg, h.regr = newRegistry(h)
	return h, nil
}

// Start binds the hub to the relay and starts sending the counters. Call it
// once, after the relay exists.
func (h *Hub) Start(src Source) {
	if !h.src.CompareAndSwap(nil, &src) {
		return
	}
	h.wg.Add(1)
	go h.tickStats()
}

// Close stops the hub: streams end and the counters stop. It is safe to
// call more than once.
func (h *Hub) Close() {
	h.once.Do(func() { close(h.closed) })
	h.wg.Wait()
}

func (h *Hub) source() Source {
	if p := h.src.Load(); p != nil {
		return *p
	}
	return nil
}

// OnEvent numbers a relay event and hands it to every subscriber. It never
// blocks: a subscriber whose buffer is full is marked for a resync.
func (h *Hub) OnEvent(e server.Event) {
	h.publish(deltaOf(e, h.cfg.Node != ""))
	h.noticeWatched(e)
}

func (h *Hub) publish(d adminapi.Delta) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	d.Seq = h.seq
	for sub := range h.subs {
		if sub.stale.Load() {
			continue
		}
		select {
		case sub.ch <- d:
		default:
			h.resyncs.Add(1)
			h.requestResync(sub)
		}
	}
}

// Seq returns the number of the last delta.
func (h *Hub) Seq() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seq
}

func (h *Hub) subscribe() *subscriber {
	sub := &subscriber{ch: make(chan adminapi.Delta, h.cfg.Buffer), wake: make(chan struct{}, 1),
		watches: newSubscriberWatches(h.cfg.TrafficBuffer)}
	sub.stale.Store(true) // the first thing a subscriber gets is a snapshot
	h.mu.Lock()
	h.subs[sub] = struct{}{}
	h.mu.Unlock()
	return sub
}

func (h *Hub) unsubscribe(sub *subscriber) {
	h.mu.Lock()
	delete(h.subs, sub)
	if sub.counted {
		sub.counted = false
		h.nsubs.Add(-1)
	}
	h.mu.Unlock()
	h.unwatchAll(sub)
}

// requestResync makes the subscriber's stream send a fresh snapshot next.
func (h *Hub) requestResync(sub *subscriber) {
	sub.stale.Store(true)
	select {
	case sub.wake <- struct{}{}:
	default:
	}
}

// resync restarts a subscriber's stream: it empties its buffer and returns
// a snapshot that the deltas arriving from now on follow.
func (h *Hub) resync(sub *subscriber) *adminapi.Snapshot {
	h.mu.Lock()
	for drained := false; !drained; {
		select {
		case <-sub.ch:
		case <-sub.wake:
		default:
			drained = true
		}
	}
	sub.stale.Store(false)
	if !sub.counted {
		// Counted from its first snapshot on: a subscriber counted gets
		// every change from then.
		sub.counted = true
		h.nsubs.Add(1)
	}
	seq := h.seq
	h.mu.Unlock()
	return h.snapshotAt(seq)
}

// Snapshot returns the relay's current state.
func (h *Hub) Snapshot() *adminapi.Snapshot {
	return h.snapshotAt(h.Seq())
}

// snapshotAt reads the relay's state, which reflects every delta up to seq.
func (h *Hub) snapshotAt(seq uint64) *adminapi.Snapshot {
	now := h.cfg.Now()
	snap := &adminapi.Snapshot{Seq: seq, Time: now, Devices: []adminapi.Device{}, Pairs: []adminapi.Pair{}}
	snap.Node = h.cfg.Node
	// Read afresh: the lease ages of the last reading, up to a second old,
	// would be that much too long.
	h.readNodes()
	snap.Nodes = h.clusterNodes(now)
	src := h.source()
	if src == nil {
		snap.Stats = adminapi.Stats{Time: now, Refusals: map[string]uint64{}, PairFailed: map[string]uint64{}, Subscribers: int(h.nsubs.Load())}
		return snap
	}
	devs := src.Devices()
	snap.Devices = make([]adminapi.Device, len(devs))
	var refusals map[string]uint64
	if p := h.refusals.Load(); p != nil {
		refusals = *p
	}
	for i, d := range devs {
		snap.Devices[i] = deviceOf(d.Device, h.cfg.Node != "")
		snap.Devices[i].Messages = d.Messages
		snap.Devices[i].Refusals = refusals[d.ID]
	}
	pairs := src.Pairs()
	snap.Pairs = make([]adminapi.Pair, len(pairs))
	for i, p := range pairs {
		snap.Pairs[i] = adminapi.Pair{A: p.A, B: p.B, Since: p.Since, Messages: p.Messages}
	}
	snap.Stats = statsOf(src.Stats(), now)
	if last := h.stats.Load(); last != nil {
		snap.Stats.MessagesPerSec, snap.Stats.AcksPerSec = last.MessagesPerSec, last.AcksPerSec
	}
	snap.Stats.Subscribers = int(h.nsubs.Load())
	return snap
}

// sink delivers a stream to one subscriber. Each method returns once the
// subscriber acknowledged what it was sent.
type sink interface {
	snapshot(ctx context.Context, snap *adminapi.Snapshot) error
	deltas(ctx context.Context, ds []adminapi.Delta) error
	detail(ctx context.Context, det *adminapi.DeviceDetail) error
	traffic(ctx context.Context, batch *adminapi.TrafficBatch) error
}

// message is what the stream sends next: deltas, or what the subscriber
// watches.
type message struct {
	deltas  []adminapi.Delta
	traffic *adminapi.TrafficBatch
	details []*adminapi.DeviceDetail
}

// send hands m to out: the deltas and the traffic in the order they
// happened (by their times, in runs of each), then the details.
func (m message) send(ctx context.Context, out sink) error {
	ds := m.deltas
	var ts []adminapi.Traffic
	var lost uint64
	if m.traffic != nil {
		ts, lost = m.traffic.Traffic, m.traffic.Lost
	}
	for len(ds) > 0 || len(ts) > 0 || lost > 0 {
		if len(ds) > 0 && (len(ts) == 0 || !ts[0].Time.Before(ds[0].Time)) {
			n := 1
			for n < len(ds) && (len(ts) == 0 || !ts[0].Time.Before(ds[n].Time)) {
				n++
			}
			if err := out.deltas(ctx, ds[:n]); err != nil {
				return err
			}
			ds = ds[n:]
			continue
		}
		n := 0
		for n < len(ts) && (len(ds) == 0 || ts[n].Time.Before(ds[0].Time)) {
			n++
		}
		if err := out.traffic(ctx, &adminapi.TrafficBatch{Traffic: ts[:n], Lost: lost}); err != nil {
			return err
		}
		ts, lost = ts[n:], 0
	}
	for _, det := range m.details {
		if err := out.detail(ctx, det); err != nil {
			return err
		}
	}
	return nil
}

// errHubClosed ends streams when the hub closes.
var errHubClosed = errors.New("admin: hub closed")

// stream feeds sub to out until ctx ends, the hub closes or out fails:
// a snapshot, then batches of deltas, and a fresh snapshot whenever the
// subscriber fell behind.
func (h *Hub) stream(ctx context.Context, sub *subscriber, out sink) error {
	for {
		if err := out.snapshot(ctx, h.resync(sub)); err != nil {
			return err
		}
		for {
			m, resync, err := h.next(ctx, sub)
			if err != nil {
				return err
			}
			if resync {
				break // fell behind
			}
			if err := m.send(ctx, out); err != nil {
				return err
			}
		}
	}
}

// next waits for something to send: up to Batch deltas, with the traffic
// and details waiting for the subscriber. resync says the subscriber fell
// behind and needs a snapshot instead.
func (h *Hub) next(ctx context.Context, sub *subscriber) (m message, resync bool, err error) {
	w := &sub.watches
	for m.deltas == nil && m.traffic == nil && m.details == nil {
		if sub.stale.Load() {
			return message{}, true, nil
		}
		select {
		case d := <-sub.ch:
			m.deltas = append(make([]adminapi.Delta, 0, min(h.cfg.Batch, len(sub.ch)+1)), d)
		case t := <-w.traffic:
			m.traffic = w.takeTraffic(t, h.cfg.Batch)
		case <-w.detailed:
			if ds := w.takeDetails(); len(ds) > 0 {
				m.details = ds
			}
		case <-sub.wake:
		case <-ctx.Done():
			return message{}, false, ctx.Err()
		case <-h.closed:
			return message{}, false, errHubClosed
		}
	}
fill:
	for len(m.deltas) < h.cfg.Batch {
		select {
		case d := <-sub.ch:
			m.deltas = append(m.deltas, d)
		default:
			break fill
		}
	}
	if m.traffic == nil && len(w.traffic) > 0 {
		// What is waiting of both kinds goes together, in order.
		m.traffic = w.takeTraffic(<-w.traffic, h.cfg.Batch)
	}
	if sub.stale.Load() {
		return message{}, true, nil
	}
	return m, false, nil
}

// tickStats publishes the counters every StatsInterval until Close.
func (h *Hub) tickStats() {
	defer h.wg.Done()
	t := time.NewTicker(h.cfg.StatsInterval)
	defer t.Stop()
	var smp sampler
	for {
		select {
		case <-h.closed:
			return
		case <-h.watchWake:
			h.refreshWatches(h.source())
			continue
		case <-t.C:
		}
		h.readNodes()
		h.sampleStats(&smp)
		h.refreshWatches(h.source())
		h.auth.flush(h.cfg.Now())
	}
}

// sampleStats reads the counters, computes the rates since the previous
// sample, and publishes them with the message counts and rates of the
// pairs and devices that relayed since then, and the refusal counts of the
// devices refused since then (smp, the previous sample, is updated in
// place). This is the one place rates are computed: subscribers show them
// as they come. Pairs and devices are read only while someone subscribes.
func (h *Hub) sampleStats(smp *sampler) {
	src := h.source()
	now := h.cfg.Now()
	st := statsOf(src.Stats(), now)
	var dt float64
	if prev := h.stats.Load(); prev != nil {
		if dt = now.Sub(prev.Time).Seconds(); dt > 0 {
			st.MessagesPerSec = rate(prev.Messages, st.Messages, dt)
			st.AcksPerSec = rate(prev.Acks, st.Acks, dt)
		}
	}
	st.Subscribers = int(h.nsubs.Load())
	h.stats.Store(&st)
	d := adminapi.Delta{Kind: adminapi.KindStats, Time: now, Stats: &st, Nodes: h.clusterNodes(now)}
	if st.Subscribers > 0 {
		if smp.pairs == nil {
			smp.pairs = map[string]pairSample{}
		}
		d.PairMessages, d.PairRates = changedPairs(src.Pairs(), smp.pairs, dt)
		if smp.deviceSampleDue(now, st.Devices) {
			d.DevicesSampled = true
			d.DeviceMessages, d.DeviceRates, d.DeviceRefusals = h.sampleDevices(src, smp, st.TotalRefusals(), now)
		}
	} else {
		clear(smp.pairs)
		h.forgetDevices(smp)
	}
	h.publish(d)
}

// pairSample is a pair's message count at a stats sample, keyed by its A.
type pairSample struct {
	b        string    // B and Since tell a pair from a later one
	since    time.Time // with the same A, whose rate starts afresh
	messages uint64
}

// changedPairs returns the message counts of the pairs whose count changed
// since the last sample, and the rates of those among them that were
// already paired then, over seconds; it records the current counts in last.
func changedPairs(pairs []server.PairInfo, last map[string]pairSample, seconds float64) (map[string]uint64, map[string]float64) {
	var counts map[string]uint64
	var rates map[string]float64
	seen := make(map[string]struct{}, len(pairs))
	for _, p := range pairs {
		seen[p.A] = struct{}{}
		prev, ok := last[p.A]
		if ok && prev.messages == p.Messages {
			continue
		}
		last[p.A] = pairSample{b: p.B, since: p.Since, messages: p.Messages}
		if counts == nil {
			counts = make(map[string]uint64)
		}
		counts[p.A] = p.Messages
		if ok && prev.b == p.B && prev.since.Equal(p.Since) && seconds > 0 {
			if rates == nil {
				rates = make(map[string]float64)
			}
			rates[p.A] = rate(prev.messages, p.Messages, seconds)
		}
	}
	for a := range last {
		if _, ok := seen[a]; !ok {
			delete(last, a)
		}
	}
	return counts, rates
}

func rate(before, after uint64, seconds float64) float64 {
	if after < before {
		return 0
	}
	return float64(after-before) / seconds
}

// Kick disconnects device id on an operator's behalf (by names them) and
// publishes the command in the stream.
func (h *Hub) Kick(id, by string) error {
	return h.command(adminapi.CommandKick, id, by, func(src Source) error { return src.Kick(id) })
}

// Unpair breaks the pair device id is in on an operator's behalf and
// publishes the command in the stream.
func (h *Hub) Unpair(id, by string) error {
	return h.command(adminapi.CommandUnpair, id, by, func(src Source) error {
		_, err := src.Unpair(id)
		return err
	})
}

func (h *Hub) command(name, id, by string, run func(Source) error) error {
	if err := protocol.ValidateID(id); err != nil {
		return err
	}
	src := h.source()
	if src == nil {
		return protocol.Errorf(protocol.CodeShuttingDown, "the relay is not running")
	}
	err := run(src)
	d := adminapi.Delta{Kind: adminapi.KindCommand, Time: h.cfg.Now(), Command: name, ID: id, By: by}
	if err != nil {
		d.Code = string(protocol.CodeOf(err))
		if d.Code == "" {
			d.Code = string(protocol.CodeBadRequest)
		}
	}
	h.publish(d)
	if err != nil {
		h.log.Info("admin command refused", "command", name, "id", id, "by", by, "err", err)
		return fmt.Errorf("%s %q: %w", name, id, err)
	}
	h.log.Info("admin command", "command", name, "id", id, "by", by)
	return nil
}

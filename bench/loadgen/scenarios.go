package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Scenario names.
const (
	ScenarioFleet    = "fleet"     // many pairs, each sending acks at a steady rate
	ScenarioFleet10x = "fleet-10x" // the fleet at ten times the rate
	ScenarioLatency  = "latency"   // sequential ack round trips
	ScenarioAck      = "ack"       // a window of outstanding acks per pair
	ScenarioEmit     = "emit"      // fire-and-forget emits, counted at the receivers
	ScenarioDevices  = "devices"   // connect and pair many devices, then idle memory
	// ScenarioCluster is the ack scenario with round trips recorded, run
	// against a cluster: each pair's sender on one node (Target.URL), its
	// receiver on another (Target.PeerURL). Not one of the rounds' Scenarios.
	ScenarioCluster = "cluster"
)

// Scenarios lists the scenarios in the order a round runs them.
var Scenarios = []string{ScenarioFleet, ScenarioFleet10x, ScenarioLatency, ScenarioAck, ScenarioEmit, ScenarioDevices}

// Metric names of a Result.
const (
	MetricMessages       = "messages"           // messages completed in the window
	MetricRate           = "rate"               // messages per second
	MetricCPUPerMsg      = "cpu_us_per_msg"     // server CPU microseconds per message
	MetricServerCPU      = "server_cpu_pct"     // server CPU, percent of one core
	MetricGenCPU         = "gen_cpu_pct"        // load generator CPU, percent of one core
	MetricOtherCPU       = "other_cpu_pct"      // CPU of every other process, percent of one core
	MetricSoftIRQ        = "softirq_cpu_pct"    // the kernel's interrupt time (loopback network), percent of one core
	MetricP50            = "p50_us"             // round trip percentiles, microseconds
	MetricP99            = "p99_us"             //
	MetricP999           = "p999_us"            //
	MetricDevices        = "devices"            // devices connected and paired
	MetricConnect        = "connect_s"          // seconds to connect them
	MetricPair           = "pair_s"             // seconds to pair them
	MetricRSSBase        = "rss_base_mib"       // server RSS before they connected
	MetricRSS            = "rss_mib"            // server RSS at the end (settled, for devices)
	MetricPeakRSS        = "peak_rss_mib"       // server peak RSS
	MetricMemPerDevice   = "mem_per_device_kib" // RSS growth per idle paired device
	MetricIdleCPU        = "idle_cpu_pct"       // server CPU while the devices idle
	MetricSettled        = "settled"            // 1 when RSS settled before the deadline
	MetricOffered        = "offered_rate"       // messages the schedule sends per second (paced scenarios)
	MetricSkipped        = "skipped"            // sends skipped as their pair had its most acks outstanding
	MetricLagP50         = "gen_lag_p50_us"     // how late the generator fired its sends against their schedule
	MetricLagP99         = "gen_lag_p99_us"     //
	MetricLagMax         = "gen_lag_max_us"     //
	MetricSyscallsPerMsg = "syscalls_per_msg"   // server read and write system calls per message
	MetricSwitchesPerMsg = "switches_per_msg"   // server context switches per message
	MetricRedisCPU       = "redis_cpu_pct"      // Redis server CPU, percent of one core (Target.RedisPID)
	MetricRedisCPUPerMsg = "redis_cpu_us_per_msg"
	MetricTotalCPUPerMsg = "total_cpu_us_per_msg"  // the relay's processes and Redis, per message
	MetricNodeACPUPerMsg = "node_a_cpu_us_per_msg" // the senders' node alone, per message (with Target.PeerPID)
	MetricNodeBCPUPerMsg = "node_b_cpu_us_per_msg" // the receivers' node alone, per message
)

// Config says what the scenarios do. Start from DefaultConfig.
type Config struct {
	// LatencyPairs pairs each make sequential ack round trips: 1 measures
	// a relay's latency with nothing else to do, more measure it loaded.
	LatencyPairs int
	// Pairs is how many pairs drive the throughput scenarios.
	Pairs int
	// AckWindow is how many acks each pair keeps outstanding (ack).
	AckWindow int
	// EmitWindow bounds each pair's messages sent but not yet delivered
	// (emit): fire-and-forget on the wire, but the relay's queues stay
	// bounded, so the figure is a sustained rate, not a burst into buffers.
	EmitWindow int
	// Payload is the length of the string carried in each message.
	Payload int
	// Warmup runs the load before measuring; Duration is the measured window.
	Warmup, Duration time.Duration
	// Devices is how many devices the devices scenario connects and pairs.
	Devices int
	// PairWindow is how many pairing requests are in flight at once.
	PairWindow int
	// DialConcurrency is how many connections are opened at once.
	DialConcurrency int
	// FleetPairs pairs each send P2P_EMIT_ACKNOWLEDGE FleetRate times a
	// second on average (ten times that in fleet-10x), each interval drawn
	// within ±FleetJitter (a fraction) of the mean, whether the acks of
	// the ones before have come back or not; FleetWarmup runs the fleet
	// before its FleetDuration is measured.
	FleetPairs                 int
	FleetRate, FleetJitter     float64
	FleetWarmup, FleetDuration time.Duration
	// BaseSettle says when the fresh relay's memory counts as settled,
	// before the devices connect; Settle, once they idle (devices).
	BaseSettle, Settle Settle
	// Logger receives progress. Default: discard.
	Logger *slog.Logger `json:"-"`
	// OnMeasure, when set, is called as a measured phase starts, with its
	// length (0 when not known in advance): a hook to start a profile.
	OnMeasure func(window time.Duration) `json:"-"`
	// OnIdle, when set, is called by the devices scenario once the relay's
	// memory has settled with every device connected and paired: a hook to
	// take a heap profile of idle devices.
	OnIdle func() `json:"-"`
}

// DefaultConfig is a full run's configuration.
func DefaultConfig() Config {
	return Config{
		LatencyPairs:    1,
		Pairs:           32,
		AckWindow:       64,
		EmitWindow:      256,
		Payload:         64,
		Warmup:          time.Second,
		Duration:        5 * time.Second,
		Devices:         5000,
		PairWindow:      256,
		DialConcurrency: 64,
		FleetPairs:      5000,
		FleetRate:       1,
		FleetJitter:     0.1,
		FleetWarmup:     5 * time.Second,
		FleetDuration:   10 * time.Second,
		BaseSettle:      Settle{Every: 250 * time.Millisecond, Min: time.Second, Stable: time.Second, Max: 5 * time.Second, Tolerance: 0.01},
		Settle:          DefaultSettle,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	for name, v := range map[string]int{
		"latency pairs": c.LatencyPairs, "pairs": c.Pairs, "ack window": c.AckWindow, "emit window": c.EmitWindow,
		"pair window": c.PairWindow, "dial concurrency": c.DialConcurrency, "fleet pairs": c.FleetPairs,
	} {
		if v < 1 {
			return fmt.Errorf("%s must be at least 1, got %d", name, v)
		}
	}
	if c.Devices < 2 || c.Devices%2 != 0 {
		return fmt.Errorf("devices must be a positive even number, got %d", c.Devices)
	}
	if c.Payload < 0 {
		return fmt.Errorf("payload must not be negative, got %d", c.Payload)
	}
	if c.Warmup < 0 || c.Duration <= 0 || c.FleetWarmup < 0 || c.FleetDuration <= 0 {
		return errors.New("warm-ups must not be negative and durations must be positive")
	}
	// At most one send a microsecond per pair, so that periods stay whole.
	if !(c.FleetRate > 0 && c.FleetRate*fleet10x <= 1e6) {
		return fmt.Errorf("fleet rate must be above 0 and at most %g per second, got %g", 1e6/fleet10x, c.FleetRate)
	}
	if !(c.FleetJitter >= 0 && c.FleetJitter < 1) {
		return fmt.Errorf("fleet jitter must be at least 0 and below 1, got %g", c.FleetJitter)
	}
	return nil
}

// FilesNeeded is how many open files a run of c needs: a connection per
// device, and room to spare.
func (c Config) FilesNeeded() int {
	return max(c.Devices, 2*c.Pairs, 2*c.LatencyPairs, 2*c.FleetPairs) + 256
}

// devicesOf is how many devices scenario name connects.
func (c Config) devicesOf(name string) int {
	switch name {
	case ScenarioFleet, ScenarioFleet10x:
		return 2 * c.FleetPairs
	case ScenarioLatency:
		return 2 * c.LatencyPairs
	case ScenarioDevices:
		return c.Devices
	}
	return 2 * c.Pairs
}

// Target is the relay under test: where it listens and its process id;
// for a cluster, where its other node listens, and the processes whose CPU
// counts with the relay's (its other node) or apart (Redis).
type Target struct {
	URL string
	PID int
	// PeerURL, when set, is where the second device of every pair
	// connects (another node of the cluster URL is a node of); PeerPID is
	// that node's process, whose CPU time, memory and system calls are
	// added to PID's.
	PeerURL string
	PeerPID int
	// RedisPID, when set, is the Redis server the nodes share: its CPU is
	// reported apart (MetricRedisCPU), and with the relay's in
	// MetricTotalCPUPerMsg.
	RedisPID int
}

// relays returns the target's relay processes.
func (t Target) relays() []int {
	if t.PeerPID != 0 && t.PeerPID != t.PID {
		return []int{t.PID, t.PeerPID}
	}
	return []int{t.PID}
}

// Result is what one scenario measured.
type Result struct {
	Scenario   string             `json:"scenario"`
	Metrics    map[string]float64 `json:"metrics"`
	Errors     int64              `json:"errors"`
	FirstError string             `json:"first_error,omitempty"`
	Notes      []string           `json:"notes,omitempty"`
}

// Run runs one scenario against the target.
func Run(ctx context.Context, cfg Config, name string, t Target) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	sources, err := LoopbackSources(t.URL, cfg.devicesOf(name))
	if err != nil {
		return Result{}, err
	}
	r := &run{cfg: cfg, t: t, dialer: &Dialer{URL: t.URL, Sources: sources}, log: cfg.Logger.With("scenario", name)}
	r.peerDialer = r.dialer
	if t.PeerURL != "" && t.PeerURL != t.URL {
		if sources, err = LoopbackSources(t.PeerURL, cfg.devicesOf(name)); err != nil {
			return Result{}, err
		}
		r.peerDialer = &Dialer{URL: t.PeerURL, Sources: sources}
	}
	// Ids unique to this run, so that runs against one relay never meet
	// the devices of the run before, whose disconnections may still be
	// under way. Every run's ids have the same length.
	r.prefix = fmt.Sprintf("%.1s%04x-", name, uint16(time.Now().UnixNano()>>10))
	var res Result
	closed := func(pairs, window int, withAck, record bool) loadSpec {
		return loadSpec{pairs: pairs, window: window, withAck: withAck, record: record, warmup: cfg.Warmup, duration: cfg.Duration}
	}
	switch name {
	case ScenarioFleet, ScenarioFleet10x:
		res, err = r.load(ctx, fleetSpec(cfg, name == ScenarioFleet10x))
	case ScenarioLatency:
		res, err = r.load(ctx, closed(cfg.LatencyPairs, 1, true, true))
	case ScenarioAck:
		res, err = r.load(ctx, closed(cfg.Pairs, cfg.AckWindow, true, false))
	case ScenarioCluster:
		res, err = r.load(ctx, closed(cfg.Pairs, cfg.AckWindow, true, true))
	case ScenarioEmit:
		res, err = r.load(ctx, closed(cfg.Pairs, cfg.EmitWindow, false, false))
	case ScenarioDevices:
		res, err = r.devices(ctx, cfg.Devices)
	default:
		return Result{}, fmt.Errorf("unknown scenario %q (want one of %s or %s)", name, strings.Join(Scenarios, ", "), ScenarioCluster)
	}
	res.Scenario = name
	res.Errors = r.errs.n.Load()
	res.FirstError = r.errs.first()
	return res, err
}

// run is one scenario's state.
type run struct {
	prefix     string // of device ids
	cfg        Config
	t          Target
	dialer     *Dialer // of the pairs' senders
	peerDialer *Dialer // of their receivers: dialer, or Target.PeerURL's
	log        *slog.Logger
	errs       errorLog

	closing atomic.Bool // set once the devices are being closed
}

// errorLog counts what went wrong during a scenario and keeps the first.
type errorLog struct {
	n   atomic.Int64
	mu  sync.Mutex
	msg string
}

func (e *errorLog) add(format string, args ...any) {
	if e.n.Add(1) == 1 {
		e.mu.Lock()
		e.msg = fmt.Sprintf(format, args...)
		e.mu.Unlock()
	}
}

func (e *errorLog) first() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.msg
}

// Wire vocabulary the scenarios use.
var (
	answerTrue     = []byte("[true]")
	answerOK       = []byte(`["ok"]`)
	answerNone     = []byte("[]")
	ackErrorPrefix = []byte(`[{"error"`)
)

// registerAck is the ack id of a device's pairing request; the load's ack
// ids start at 1.
const registerAck = 0

// pair is two devices, a (which asks to pair and sends) and b (which
// accepts and receives), and the load between them. In the closed-loop
// scenarios each completed message (an ack at a, a delivery at b) sends
// the next one at once, from the reader goroutine that saw it complete:
// the window of messages in flight stays full without handing work from
// one goroutine to another. In the paced ones (fleet) a pacer sends them
// on a schedule, and a completion only counts.
type pair struct {
	aID, bID string
	a, b     *Conn
	paired   chan []byte // the answer to a's P2P_REGISTER
	pre, suf []byte      // a message is pre + sequence number + suf
	withAck  bool

	load *loadState // set before the devices connect; nil outside load scenarios

	sent atomic.Int64 // messages sent
	done atomic.Int64 // messages completed: acks at a, deliveries at b

	mu     sync.Mutex // guards buf, seq, sentAt, rtts
	buf    []byte
	seq    int64
	sentAt sendTimes       // when each message awaiting its ack was sent (record)
	rtts   []time.Duration // round trips completed while measuring (record)
}

// sendTimes records when each message still awaiting its ack was sent,
// message seq (from 1) in slot seq % len: at most len of them, and a
// message waits for its slot when an older one still holds it, so that
// acks that come back out of order never mix up their times.
type sendTimes []sendTime

type sendTime struct {
	seq int64 // 0: free
	at  time.Time
}

// free reports whether message seq may be sent.
func (t sendTimes) free(seq int64) bool { return t[seq%int64(len(t))].seq == 0 }

// put records that message seq was sent at at.
func (t sendTimes) put(seq int64, at time.Time) { t[seq%int64(len(t))] = sendTime{seq, at} }

// take returns the round trip of message seq acked at now and frees its
// slot; false when seq is not outstanding.
func (t sendTimes) take(seq int64, now time.Time) (time.Duration, bool) {
	if seq <= 0 {
		return 0, false
	}
	s := &t[seq%int64(len(t))]
	if s.seq != seq {
		return 0, false
	}
	s.seq = 0
	return now.Sub(s.at), true
}

// loadState is what the pairs of a load scenario share.
type loadState struct {
	record    bool        // record round trips (scenarios with acks)
	paced     bool        // sends come from a pacer, not from completions
	stopping  atomic.Bool // no more sends
	measuring atomic.Bool // round trips count
	errs      *errorLog
}

func newPair(prefix string, i int) *pair {
	return &pair{aID: prefix + "a" + strconv.Itoa(i), bID: prefix + "b" + strconv.Itoa(i), paired: make(chan []byte, 1)}
}

// completed counts one completed message, the ack ackID or a delivery
// (NoAck), records its round trip, and in a closed loop sends the next.
func (p *pair) completed(ackID int64) {
	ls := p.load
	if ls != nil && ls.record && ackID > 0 {
		now := time.Now()
		p.mu.Lock()
		if rtt, ok := p.sentAt.take(ackID, now); ok && ls.measuring.Load() {
			p.rtts = append(p.rtts, rtt)
		}
		p.mu.Unlock()
	}
	p.done.Add(1)
	if ls != nil && !ls.paced {
		p.send()
	}
}

// send sends a's next message and reports whether it did: not once the
// load is stopping, nor, recording round trips, while the message whose
// slot in sentAt it would take is outstanding.
func (p *pair) send() bool {
	ls := p.load
	if ls == nil || ls.stopping.Load() {
		return false
	}
	p.mu.Lock()
	if ls.record && !p.sentAt.free(p.seq+1) {
		p.mu.Unlock()
		return false
	}
	p.seq++
	ack := int64(NoAck)
	if p.withAck {
		ack = p.seq
	}
	p.buf = AppendEvent(p.buf[:0], ack, p.pre)
	p.buf = strconv.AppendInt(p.buf, p.seq, 10)
	p.buf = append(p.buf, p.suf...)
	p.sent.Add(1)
	if ls.record {
		p.sentAt.put(p.seq, time.Now())
	}
	err := p.a.Send(p.buf)
	if err != nil && ls.record {
		p.sentAt.take(p.seq, time.Time{})
	}
	p.mu.Unlock()
	if err != nil {
		p.sent.Add(-1)
		ls.errs.add("%s: send: %v", p.aID, err)
		return false
	}
	return true
}

// handlerA handles the sending side: its pairing answer and its acks.
func (r *run) handlerA(p *pair) Handler {
	return func(c *Conn, pk Packet) {
		switch {
		case pk.Kind == KindAck && pk.AckID == registerAck:
			select {
			case p.paired <- bytes.Clone(pk.Data):
			default:
			}
		case pk.Kind == KindAck:
			if bytes.HasPrefix(pk.Data, ackErrorPrefix) {
				r.errs.add("%s: ack answered with an error: %s", c.ID, truncate(pk.Data))
			}
			p.completed(pk.AckID)
		default:
			r.unexpected(c, pk)
		}
	}
}

// handlerB handles the receiving side: it accepts the pairing request,
// answers acks, and counts fire-and-forget deliveries.
func (r *run) handlerB(p *pair) Handler {
	return func(c *Conn, pk Packet) {
		switch {
		case pk.Kind != KindEvent:
			r.unexpected(c, pk)
		case pk.IsEvent("bench"):
			if pk.AckID == NoAck {
				p.completed(NoAck)
			} else if err := c.Answer(pk.AckID, answerOK); err != nil {
				r.errs.add("%s: answer: %v", c.ID, err)
			}
		case pk.IsEvent("P2P_REGISTER") && pk.AckID != NoAck:
			if err := c.Answer(pk.AckID, answerTrue); err != nil {
				r.errs.add("%s: answer: %v", c.ID, err)
			}
		default:
			r.unexpected(c, pk)
		}
	}
}

// checkLost counts an error for every connection of pairs that ended.
func (r *run) checkLost(pairs []*pair) {
	for _, p := range pairs {
		for _, c := range [...]*Conn{p.a, p.b} {
			if err := c.Err(); err != nil {
				r.errs.add("%s: connection lost: %v", c.ID, err)
			}
		}
	}
}

// unexpected counts a packet no scenario should see (SERVER_ERROR,
// P2P_DISCONNECT...), answering its ack if it has one.
func (r *run) unexpected(c *Conn, pk Packet) {
	if r.closing.Load() {
		return
	}
	if pk.Kind == KindEvent && pk.AckID != NoAck {
		_ = c.Answer(pk.AckID, answerNone)
	}
	r.errs.add("%s: unexpected packet 4%c %s", c.ID, pk.Kind, truncate(pk.Data))
}

// parallel calls fn(0..n-1) from at most workers goroutines and returns
// the first error, after which the rest are skipped.
func parallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// connect dials both devices of every pair.
func (r *run) connect(ctx context.Context, pairs []*pair) error {
	return parallel(ctx, 2*len(pairs), r.cfg.DialConcurrency, func(ctx context.Context, k int) error {
		p := pairs[k/2]
		var err error
		if k%2 == 0 {
			p.a, err = r.dialer.Dial(ctx, p.aID, r.handlerA(p))
		} else {
			p.b, err = r.peerDialer.Dial(ctx, p.bID, r.handlerB(p))
		}
		return err
	})
}

// pairAll pairs every a with its b, PairWindow requests at a time.
func (r *run) pairAll(ctx context.Context, pairs []*pair) error {
	return parallel(ctx, len(pairs), r.cfg.PairWindow, func(ctx context.Context, i int) error {
		p := pairs[i]
		req := AppendEvent(nil, registerAck, []byte(`["P2P_REGISTER",`+strconv.Quote(p.bID)+`]`))
		if err := p.a.Send(req); err != nil {
			return fmt.Errorf("%s: P2P_REGISTER: %w", p.aID, err)
		}
		// Longer than both relays' pairing timeout: they answer first.
		wait := time.NewTimer(15 * time.Second)
		defer wait.Stop()
		select {
		case ans := <-p.paired:
			if !bytes.Equal(ans, answerTrue) {
				return fmt.Errorf("%s could not pair with %s: %s (%s)", p.aID, p.bID, ans, r.errs.first())
			}
			return nil
		case <-p.a.Done():
			return fmt.Errorf("%s: connection closed while pairing: %v", p.aID, p.a.Err())
		case <-wait.C:
			return fmt.Errorf("%s: no answer to P2P_REGISTER", p.aID)
		case <-ctx.Done():
			return ctx.Err()
		}
	})
}

// closeAll closes every device; what they receive from then on (their
// peers' P2P_DISCONNECT) is expected.
func (r *run) closeAll(pairs []*pair) {
	r.closing.Store(true)
	for _, p := range pairs {
		for _, c := range [...]*Conn{p.a, p.b} {
			if c != nil {
				_ = c.Close()
			}
		}
	}
}

// sample reads the target's processes, counters included: their sum.
func (r *run) sample() (ProcSample, error) {
	s, err := SampleGroup(r.t.relays(), true)
	if err != nil {
		return s, fmt.Errorf("relay: %w", err)
	}
	return s, nil
}

// sampleRedis reads the Redis server's CPU time, 0 without one.
func (r *run) sampleRedis() (time.Duration, error) {
	if r.t.RedisPID == 0 {
		return 0, nil
	}
	s, err := SampleProc(r.t.RedisPID)
	if err != nil {
		return 0, fmt.Errorf("redis-server: %w", err)
	}
	return s.CPU, nil
}

// sampleNodes reads the CPU time of each of the target's two nodes; 0
// for a node it cannot read (the sum, from sample, reports the error).
func (r *run) sampleNodes() (a, b time.Duration) {
	pids := r.t.relays()
	if len(pids) < 2 {
		return 0, 0
	}
	if s, err := SampleProc(pids[0]); err == nil {
		a = s.CPU
	}
	if s, err := SampleProc(pids[1]); err == nil {
		b = s.CPU
	}
	return a, b
}

// others samples every process but the generator and the target's.
func (r *run) others() Others {
	return SampleOthers(append(r.t.relays(), r.t.RedisPID)...)
}

// loadSpec is a load scenario: pairs each keeping window messages in
// flight, with acks or fire-and-forget, with round trips recorded or not;
// or, at a rate, pairs each sending rate messages a second on a schedule
// (at most window of them outstanding). It runs warmup, then measures
// duration.
type loadSpec struct {
	pairs            int
	window           int
	withAck          bool
	record           bool
	rate             float64 // per pair and second; 0: a closed loop
	jitter           float64
	warmup, duration time.Duration
}

// fleetOutstanding bounds the acks each pair of the fleet leaves
// outstanding, as a device would: a relay that falls this far behind
// sees sends skipped (counted) rather than an ever longer queue, and the
// generator's work follows what the relay completes, not what it cannot.
const fleetOutstanding = 8

// fleet10x is how much faster fleet-10x sends than fleet.
const fleet10x = 10

// fleetSpec is the fleet scenario, at ten times the rate when fast.
func fleetSpec(c Config, fast bool) loadSpec {
	rate := c.FleetRate
	if fast {
		rate *= fleet10x
	}
	return loadSpec{pairs: c.FleetPairs, window: fleetOutstanding, withAck: true, record: true,
		rate: rate, jitter: c.FleetJitter, warmup: c.FleetWarmup, duration: c.FleetDuration}
}

// fleetSeed makes every fleet's schedule the same, on both relays.
const fleetSeed = 1

// load runs a load scenario: warm up, then measure for the spec's duration.
func (r *run) load(ctx context.Context, spec loadSpec) (Result, error) {
	pairs := make([]*pair, spec.pairs)
	body := payload(r.cfg.Payload)
	event := "P2P_EMIT"
	if spec.withAck {
		event = "P2P_EMIT_ACKNOWLEDGE"
	}
	ls := &loadState{record: spec.record, paced: spec.rate > 0, errs: &r.errs}
	keep := 1 << 14 // round trips a pair records room for: sequential ones over a few seconds
	if ls.paced {
		keep = int(spec.rate*spec.duration.Seconds()*1.1) + 16
	}
	for i := range pairs {
		p := newPair(r.prefix, i)
		p.pre = []byte(`["` + event + `",{"targetClientId":` + strconv.Quote(p.bID) + `,"event":"bench","args":[{"seq":`)
		p.suf = []byte(`,"body":"` + body + `"}]}]`)
		p.buf = make([]byte, 0, len(p.pre)+len(p.suf)+48)
		p.withAck = spec.withAck
		p.load = ls
		if spec.record {
			p.sentAt = make(sendTimes, spec.window)
			p.rtts = make([]time.Duration, 0, keep)
		}
		pairs[i] = p
	}
	defer r.closeAll(pairs)
	if err := r.connect(ctx, pairs); err != nil {
		return Result{}, err
	}
	if err := r.pairAll(ctx, pairs); err != nil {
		return Result{}, err
	}
	// The load starts: paced, the pacer sends on its schedule; in a
	// closed loop, each pair fills its window, and every completion sends
	// the next message from then on.
	var pc *pacer
	if ls.paced {
		period := time.Duration(float64(time.Second) / spec.rate)
		pc = startPacer(newSchedule(len(pairs), period, spec.jitter, fleetSeed), spec.duration,
			ls.measuring.Load, func(i int) bool { return pairs[i].send() })
	} else {
		for range spec.window {
			for _, p := range pairs {
				p.send()
			}
		}
	}
	stop := func() {
		ls.stopping.Store(true)
		if pc != nil {
			pc.stop()
		}
	}
	r.log.Debug("load running", "pairs", spec.pairs, "window", spec.window, "rate", spec.rate)
	if err := sleep(ctx, spec.warmup); err != nil {
		stop()
		return Result{}, err
	}
	s0, err := r.sample()
	if err != nil {
		stop()
		return Result{}, err
	}
	a0, b0 := r.sampleNodes()
	red0, rerr := r.sampleRedis()
	if rerr != nil {
		stop()
		return Result{}, rerr
	}
	n0, g0, o0, irq0 := sumDone(pairs), SelfCPU(), r.others(), SoftIRQ()
	ls.measuring.Store(true)
	if r.cfg.OnMeasure != nil {
		r.cfg.OnMeasure(spec.duration)
	}
	serr := sleep(ctx, spec.duration)
	ls.measuring.Store(false)
	s1, err := r.sample()
	a1, b1 := r.sampleNodes()
	red1, rerr := r.sampleRedis()
	n1, g1, o1, irq1 := sumDone(pairs), SelfCPU(), r.others(), SoftIRQ()
	stop()
	if serr != nil {
		return Result{}, serr
	}
	if err == nil {
		err = rerr
	}
	if err != nil {
		return Result{}, err
	}

	res := Result{Metrics: map[string]float64{}}
	if lost := r.drain(ctx, pairs, 10*time.Second); lost > 0 {
		r.errs.add("%d messages still in flight 10s after the load stopped", lost)
	}
	r.checkLost(pairs)
	window := s1.At.Sub(s0.At)
	msgs := n1 - n0
	cpu := s1.CPU - s0.CPU
	m := res.Metrics
	m[MetricMessages] = float64(msgs)
	m[MetricRate] = float64(msgs) / window.Seconds()
	m[MetricServerCPU] = 100 * cpu.Seconds() / window.Seconds()
	m[MetricGenCPU] = 100 * (g1 - g0).Seconds() / window.Seconds()
	m[MetricOtherCPU] = 100 * o1.Since(o0).Seconds() / window.Seconds()
	m[MetricSoftIRQ] = 100 * (irq1 - irq0).Seconds() / window.Seconds()
	m[MetricRSS] = mib(s1.RSS)
	m[MetricPeakRSS] = mib(s1.HWM)
	if msgs > 0 {
		m[MetricCPUPerMsg] = float64(cpu.Microseconds()) / float64(msgs)
		m[MetricSyscallsPerMsg] = float64(s1.Reads+s1.Writes-s0.Reads-s0.Writes) / float64(msgs)
		m[MetricSwitchesPerMsg] = float64(s1.Switches-s0.Switches) / float64(msgs)
	} else {
		r.errs.add("no message completed in the measured window")
	}
	if len(r.t.relays()) > 1 && msgs > 0 {
		m[MetricNodeACPUPerMsg] = float64((a1 - a0).Microseconds()) / float64(msgs)
		m[MetricNodeBCPUPerMsg] = float64((b1 - b0).Microseconds()) / float64(msgs)
	}
	if r.t.RedisPID != 0 {
		redis := red1 - red0
		m[MetricRedisCPU] = 100 * redis.Seconds() / window.Seconds()
		if msgs > 0 {
			m[MetricRedisCPUPerMsg] = float64(redis.Microseconds()) / float64(msgs)
			m[MetricTotalCPUPerMsg] = float64((cpu + redis).Microseconds()) / float64(msgs)
		}
	} else if msgs > 0 {
		m[MetricTotalCPUPerMsg] = m[MetricCPUPerMsg]
	}
	if spec.record {
		var all []time.Duration
		for _, p := range pairs {
			p.mu.Lock()
			all = append(all, p.rtts...)
			p.mu.Unlock()
		}
		slices.Sort(all)
		if len(all) == 0 {
			return res, errors.New("no round trip completed in the measured window")
		}
		m[MetricP50] = micros(Percentile(all, 0.50))
		m[MetricP99] = micros(Percentile(all, 0.99))
		m[MetricP999] = micros(Percentile(all, 0.999))
	}
	if pc != nil {
		res.Notes = paceFigures(m, pc, float64(spec.pairs)*spec.rate)
	}
	return res, nil
}

// paceFigures adds a pacer's figures over the measured window to m, which
// holds the round trips': the rate its schedule offers, the sends it
// skipped, and its lag; and returns notes on what they mean: a generator
// late against its schedule, or a relay that did not keep up with it.
func paceFigures(m map[string]float64, pc *pacer, offered float64) []string {
	var notes []string
	m[MetricOffered] = offered
	m[MetricSkipped] = float64(pc.skipped)
	slices.Sort(pc.lags)
	if len(pc.lags) > 0 {
		m[MetricLagP50] = micros(Percentile(pc.lags, 0.50))
		m[MetricLagP99] = micros(Percentile(pc.lags, 0.99))
		m[MetricLagMax] = micros(pc.lags[len(pc.lags)-1])
	}
	if GeneratorLate(m) {
		notes = append(notes, fmt.Sprintf("generator late: it fired 1%% of its sends more than %s behind schedule (more than %s and %.0f%% of the ack p99), so these figures may show its delays rather than the relay's",
			Percentile(pc.lags, 0.99).Round(10*time.Microsecond), LagLimit, 100*LagShare))
	}
	if pc.skipped > 0 || m[MetricRate] < 0.98*m[MetricOffered] {
		notes = append(notes, fmt.Sprintf("the relay fell behind: %s acks/s completed of %s/s offered; %d sends skipped, their pair having %d acks outstanding",
			fmtRate(m[MetricRate]), fmtRate(m[MetricOffered]), pc.skipped, fleetOutstanding))
	}
	return notes
}

func fmtRate(v float64) string { return strconv.FormatFloat(math.Round(v), 'f', 0, 64) }

// drain waits until every message sent has completed (acked or
// delivered) and returns how many are still missing.
func (r *run) drain(ctx context.Context, pairs []*pair, wait time.Duration) int64 {
	deadline := time.Now().Add(wait)
	for {
		var missing int64
		for _, p := range pairs {
			missing += p.sent.Load() - p.done.Load()
		}
		if missing <= 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return max(missing, 0)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func sumDone(pairs []*pair) int64 {
	var n int64
	for _, p := range pairs {
		n += p.done.Load()
	}
	return n
}

// devices connects and pairs k devices as fast as the relay allows, then
// lets them idle until the relay's memory settles.
func (r *run) devices(ctx context.Context, k int) (Result, error) {
	res := Result{Metrics: map[string]float64{}}
	m := res.Metrics
	base, _, _, err := SettleRSS(ctx, r.t.PID, r.cfg.BaseSettle)
	if err != nil {
		return res, fmt.Errorf("relay process %d: %w", r.t.PID, err)
	}
	pairs := make([]*pair, k/2)
	for i := range pairs {
		pairs[i] = newPair(r.prefix, i)
	}
	defer r.closeAll(pairs)

	if r.cfg.OnMeasure != nil {
		r.cfg.OnMeasure(0)
	}
	o0 := r.others()
	t0 := time.Now()
	if err := r.connect(ctx, pairs); err != nil {
		return res, err
	}
	connected := time.Since(t0)
	r.log.Debug("devices connected", "devices", k, "took", connected)
	t1 := time.Now()
	if err := r.pairAll(ctx, pairs); err != nil {
		return res, err
	}
	paired := time.Since(t1)
	r.log.Debug("devices paired", "pairs", len(pairs), "took", paired)
	idle0, err := r.sample()
	if err != nil {
		return res, err
	}
	s, ok, waited, err := SettleRSS(ctx, r.t.PID, r.cfg.Settle)
	if err != nil {
		return res, fmt.Errorf("relay process %d: %w", r.t.PID, err)
	}
	if !ok {
		res.Notes = append(res.Notes, fmt.Sprintf("RSS had not settled within %s", waited.Round(time.Second)))
	}
	if r.cfg.OnIdle != nil {
		r.cfg.OnIdle()
	}
	r.checkLost(pairs)
	m[MetricDevices] = float64(k)
	m[MetricConnect] = connected.Seconds()
	m[MetricPair] = paired.Seconds()
	m[MetricRSSBase] = mib(base.RSS)
	m[MetricRSS] = mib(s.RSS)
	m[MetricPeakRSS] = mib(s.HWM)
	m[MetricMemPerDevice] = float64(s.RSS-base.RSS) / 1024 / float64(k)
	m[MetricIdleCPU] = 100 * (s.CPU - idle0.CPU).Seconds() / s.At.Sub(idle0.At).Seconds()
	m[MetricOtherCPU] = 100 * r.others().Since(o0).Seconds() / time.Since(t0).Seconds()
	if ok {
		m[MetricSettled] = 1
	} else {
		m[MetricSettled] = 0
	}
	return res, nil
}

// payload returns the string each message carries: n printable characters.
func payload(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[i%len(alphabet)]
	}
	return string(b)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Percentile returns the q-quantile (0..1) of sorted values, nearest rank.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

func mib(b int64) float64 { return float64(b) / (1 << 20) }

package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/p2prelay/p2prelay/bench/loadgen"
)

// Names of the cluster run's setups.
const (
	SetupP2PDCluster = "p2pd-2n" // two p2pd nodes sharing Redis
	SetupP2PD        = "p2pd-1n" // one p2pd, no Redis
	SetupNodeCluster = "node-2n" // two reference relays on socket.io's Redis adapter
)

// Setup is one way of running a relay in the cluster run: one node, or
// several sharing a Redis server that the harness starts with them.
type Setup struct {
	// Name is how the report calls it.
	Name string
	// Redis is true when the nodes share a Redis server.
	Redis bool
	// Nodes returns how to start each node, given the Redis URL
	// (redis://127.0.0.1:PORT; "" without Redis). The pairs' senders
	// connect to the first node, their receivers to the last.
	Nodes func(redisURL string) []Relay
	// FirstValueOnly says that an ack answered with several values
	// reaches the sender with the first alone (socket.io's Redis adapter):
	// the protocol check expects that of it.
	FirstValueOnly bool
}

// P2PDNodes returns the setup of n p2pd nodes like relay (P2PD, pinned or
// not), sharing Redis when n > 1 (node ids n1, n2...).
func P2PDNodes(name string, relay Relay, n int) Setup {
	return Setup{Name: name, Redis: n > 1, Nodes: func(redisURL string) []Relay {
		if n == 1 {
			return []Relay{relay}
		}
		nodes := make([]Relay, n)
		for i := range nodes {
			r := relay
			r.Name = fmt.Sprintf("%s-n%d", relay.Name, i+1)
			r.Argv = append(slices.Clip(relay.Argv), "--redis", redisURL, "--node-id", fmt.Sprintf("n%d", i+1))
			nodes[i] = r
		}
		return nodes
	}}
}

// NodeCluster returns the setup of n reference relays on socket.io's Redis
// adapter: script (bench/node-relay/cluster.mjs) started like relay
// (Node's, pinned or not, with relay.mjs's flags).
func NodeCluster(name string, relay Relay, script string, n int) Setup {
	return Setup{Name: name, Redis: true, FirstValueOnly: true, Nodes: func(redisURL string) []Relay {
		nodes := make([]Relay, n)
		for i := range nodes {
			r := relay
			r.Name = fmt.Sprintf("%s-n%d", relay.Name, i+1)
			r.Argv = slices.Clone(relay.Argv)
			for j, a := range r.Argv {
				if strings.HasSuffix(a, ".mjs") {
					r.Argv[j] = script
				}
			}
			r.Argv = append(r.Argv, "--redis", redisURL, "--node-id", fmt.Sprintf("n%d", i+1))
			nodes[i] = r
		}
		return nodes
	}}
}

// RedisServer returns how to start redis-server (bin) on port of
// 127.0.0.1, without persistence, in dir.
func RedisServer(bin, dir string, port int) Relay {
	return Relay{
		Name: "redis",
		Bin:  bin,
		Argv: []string{bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", "", "--daemonize", "no"},
		// An empty group: Start's URL is set by StartRedis.
		Ready: redisReady,
	}
}

var redisReady = regexp.MustCompile(`Ready to accept connections()`)

// ClusterOptions configure the cluster run.
type ClusterOptions struct {
	// Setups are compared: SetupP2PDCluster, SetupP2PD and
	// SetupNodeCluster, whose figures the targets compare.
	Setups []Setup
	// Redis starts a Redis server on a port (RedisServer, pinned or not).
	Redis func(dir string, port int) Relay
	// Rounds is how many times each setup is measured; the order of the
	// setups rotates from one round to the next.
	Rounds int
	// Config is what the cluster scenario does (Pairs, AckWindow,
	// Payload, Warmup, Duration).
	Config loadgen.Config
	// QuietWait is how long each measurement may wait for other processes
	// to leave the cores alone.
	QuietWait time.Duration
	Machine   Machine
	// OutDir receives the processes' logs and results.json.
	OutDir string
	Out    io.Writer
	Logger *slog.Logger
}

// ClusterResults is everything a cluster run measured.
type ClusterResults struct {
	Started  time.Time             `json:"started"`
	Machine  Machine               `json:"machine"`
	Elapsed  float64               `json:"elapsed_s"`
	Setups   []string              `json:"setups"`
	Argv     map[string][][]string `json:"argv"` // each setup's nodes', Redis's first
	Rounds   int                   `json:"rounds"`
	Config   loadgen.Config        `json:"config"`
	Checks   map[string]string     `json:"checks"` // each setup's protocol check: "ok", or how it departs
	Records  []Record              `json:"records"`
	Verdicts []ClusterVerdict      `json:"verdicts"`
}

// ClusterTarget is one of the cluster run's targets: Metric of setup Of
// against setup Against, at least (Higher) or at most Target times.
type ClusterTarget struct {
	Label   string  `json:"label"`
	Metric  string  `json:"metric"`
	Of      string  `json:"of"`
	Against string  `json:"against"`
	Higher  bool    `json:"higher_is_better"`
	Target  float64 `json:"target,omitempty"` // 0: context, no target
}

// ClusterTargets are issue 13's targets, then context.
var ClusterTargets = []ClusterTarget{
	{"cross-node ack throughput, against one p2pd node", loadgen.MetricRate, SetupP2PDCluster, SetupP2PD, true, 0.5},
	{"cross-node ack throughput, against the Node cluster", loadgen.MetricRate, SetupP2PDCluster, SetupNodeCluster, true, 1.5},
	{"cross-node ack round trip p99, against the Node cluster", loadgen.MetricP99, SetupP2PDCluster, SetupNodeCluster, false, 1.0},
	{"cross-node ack round trip p50, against the Node cluster", loadgen.MetricP50, SetupP2PDCluster, SetupNodeCluster, false, 0},
	{"relays' CPU per message, against the Node cluster", loadgen.MetricCPUPerMsg, SetupP2PDCluster, SetupNodeCluster, false, 0},
	{"CPU per message with Redis's, against the Node cluster", loadgen.MetricTotalCPUPerMsg, SetupP2PDCluster, SetupNodeCluster, false, 0},
	{"relays' CPU per message, against one p2pd node", loadgen.MetricCPUPerMsg, SetupP2PDCluster, SetupP2PD, false, 0},
}

// ClusterVerdict is one target judged on the medians of the rounds.
type ClusterVerdict struct {
	ClusterTarget
	Median [2]float64 `json:"median"` // Of, Against
	Ratio  float64    `json:"ratio"`  // Of / Against
	Pass   bool       `json:"pass"`
}

// Missed reports a target the verdict has and did not meet.
func (v ClusterVerdict) Missed() bool { return v.Target != 0 && !v.Pass }

// ClusterMedians returns, for each setup and metric, the median over the
// records of that setup (Record.Relay).
func ClusterMedians(records []Record) map[string]map[string]float64 {
	vals := map[string]map[string][]float64{}
	for _, rec := range records {
		if vals[rec.Relay] == nil {
			vals[rec.Relay] = map[string][]float64{}
		}
		for k, v := range rec.Metrics {
			vals[rec.Relay][k] = append(vals[rec.Relay][k], v)
		}
	}
	out := map[string]map[string]float64{}
	for setup, ms := range vals {
		out[setup] = map[string]float64{}
		for k, v := range ms {
			out[setup][k] = Median(v)
		}
	}
	return out
}

// JudgeCluster judges every target both of whose setups were measured.
func JudgeCluster(records []Record) []ClusterVerdict {
	med := ClusterMedians(records)
	var out []ClusterVerdict
	for _, t := range ClusterTargets {
		a, okA := med[t.Of][t.Metric]
		b, okB := med[t.Against][t.Metric]
		if !okA || !okB {
			continue
		}
		v := ClusterVerdict{ClusterTarget: t, Median: [2]float64{a, b}}
		if b != 0 {
			v.Ratio = a / b
		}
		switch {
		case t.Target == 0:
		case t.Higher:
			v.Pass = v.Ratio >= t.Target
		default:
			v.Pass = b > 0 && v.Ratio <= t.Target
		}
		out = append(out, v)
	}
	return out
}

// rotate returns setups started at the (round-1)th: each setup goes
// first in turn.
func rotate(setups []Setup, round int) []Setup {
	k := (round - 1) % max(len(setups), 1)
	return append(slices.Clone(setups[k:]), setups[:k]...)
}

// running is a setup started: its Redis server, if any, and its nodes.
type running struct {
	redis *Proc
	nodes []*Proc
}

// stop stops the nodes, at once (a p2pd node may take seconds to hand
// over), then Redis.
func (r *running) stop() {
	var wg sync.WaitGroup
	for _, p := range r.nodes {
		wg.Go(p.Stop)
	}
	wg.Wait()
	if r.redis != nil {
		r.redis.Stop()
	}
}

// exited reports a process of the setup that has exited.
func (r *running) exited() error {
	for _, p := range append(slices.Clone(r.nodes), r.redis) {
		if p == nil {
			continue
		}
		if gone, how := p.Exited(); gone {
			return fmt.Errorf("%s: %w (%v); see %s", p.Name, errStopped, how, p.Log)
		}
	}
	return nil
}

func (r *running) target() loadgen.Target {
	a, b := r.nodes[0], r.nodes[len(r.nodes)-1]
	t := loadgen.Target{URL: a.URL, PID: a.PID, PeerURL: b.URL, PeerPID: b.PID}
	if r.redis != nil {
		t.RedisPID = r.redis.PID
	}
	return t
}

// startSetup starts s's Redis server (on a free port, tried again if
// another process takes it first) and its nodes, logging to
// logs/prefix-NAME.log.
func startSetup(ctx context.Context, o ClusterOptions, s Setup, prefix string) (*running, error) {
	r := &running{}
	logs := filepath.Join(o.OutDir, "logs")
	redisURL := ""
	if s.Redis {
		dir, err := os.MkdirTemp(o.OutDir, "redis-")
		if err != nil {
			return nil, err
		}
		for try := 0; ; try++ {
			port, err := freePort()
			if err != nil {
				return nil, err
			}
			rs := o.Redis(dir, port)
			p, err := rs.Start(ctx, filepath.Join(logs, prefix+"-redis.log"))
			if err == nil {
				p.URL = "redis://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
				r.redis, redisURL = p, p.URL
				break
			}
			if out, _ := os.ReadFile(filepath.Join(logs, prefix+"-redis.log")); try < 4 && strings.Contains(string(out), "Address already in use") {
				continue
			}
			return nil, err
		}
	}
	for _, n := range s.Nodes(redisURL) {
		p, err := n.Start(ctx, filepath.Join(logs, prefix+"-"+n.Name+".log"))
		if err != nil {
			r.stop()
			return nil, err
		}
		r.nodes = append(r.nodes, p)
	}
	return r, nil
}

// freePort returns a port of 127.0.0.1 free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Cluster runs the cluster benchmark: the cluster scenario (pairs across
// two nodes, acks outstanding) on every setup, a fresh start of each per
// round, and prints the medians and the targets.
func Cluster(ctx context.Context, o ClusterOptions) (*ClusterResults, error) {
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	if o.Rounds < 1 {
		return nil, fmt.Errorf("rounds must be at least 1, got %d", o.Rounds)
	}
	if len(o.Setups) == 0 {
		return nil, errors.New("no setup to measure")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Join(o.OutDir, "logs"), 0o755); err != nil {
		return nil, err
	}
	if err := RaiseFileLimit(o.Config.FilesNeeded()); err != nil {
		return nil, err
	}
	res := &ClusterResults{Started: time.Now(), Machine: o.Machine, Rounds: o.Rounds, Config: o.Config,
		Argv: map[string][][]string{}, Checks: map[string]string{}}
	fmt.Fprintf(o.Out, "machine: %s\n", o.Machine)
	for _, s := range o.Setups {
		res.Setups = append(res.Setups, s.Name)
		if s.Redis {
			argv := o.Redis("DIR", 0).Argv
			if i := slices.Index(argv, "--port"); i >= 0 && i+1 < len(argv) {
				argv[i+1] = "PORT"
			}
			res.Argv[s.Name] = append(res.Argv[s.Name], argv)
		}
		for _, n := range s.Nodes("redis://127.0.0.1:PORT") {
			res.Argv[s.Name] = append(res.Argv[s.Name], n.Argv)
		}
	}
	b := &bench{o: Options{QuietWait: o.QuietWait}}

	fmt.Fprintf(o.Out, "protocol check, across the nodes:")
	for _, s := range o.Setups {
		r, err := startSetup(ctx, o, s, "check-"+s.Name)
		if err != nil {
			fmt.Fprintln(o.Out)
			return nil, err
		}
		t := r.target()
		err = loadgen.CheckCluster(ctx, t.URL, t.PeerURL, s.FirstValueOnly)
		r.stop()
		if err != nil {
			fmt.Fprintln(o.Out)
			return nil, fmt.Errorf("%s fails the protocol check: %w", s.Name, err)
		}
		res.Checks[s.Name] = "ok"
		if s.FirstValueOnly {
			res.Checks[s.Name] = "ok, an ack of several values arriving as its first value"
		}
		fmt.Fprintf(o.Out, " %s %s;", s.Name, res.Checks[s.Name])
	}
	fmt.Fprintln(o.Out)

	for round := 1; round <= o.Rounds; round++ {
		order := rotate(o.Setups, round)
		fmt.Fprintf(o.Out, "\nround %d/%d (%s first)\n", round, o.Rounds, order[0].Name)
		for _, s := range order {
			rec := Record{Round: round, Relay: s.Name, Attempts: 1}
			rec.Background = b.awaitQuiet(ctx)
			start := time.Now()
			r, err := startSetup(ctx, o, s, fmt.Sprintf("r%d-%s", round, s.Name))
			if err != nil {
				return res, err
			}
			cfg := o.Config
			cfg.Logger = o.Logger.With("setup", s.Name, "round", round)
			rec.Result, err = loadgen.Run(ctx, cfg, loadgen.ScenarioCluster, r.target())
			gone := r.exited()
			r.stop()
			if gone != nil {
				return res, fmt.Errorf("%s round %d: %w", s.Name, round, gone)
			}
			if err != nil {
				return res, fmt.Errorf("%s round %d: %w", s.Name, round, err)
			}
			rec.Elapsed = time.Since(start).Seconds()
			res.Records = append(res.Records, rec)
			fmt.Fprintf(o.Out, "  %-8s %s\n", s.Name, ClusterSummary(rec.Result))
		}
	}
	res.Elapsed = time.Since(res.Started).Seconds()
	res.Verdicts = JudgeCluster(res.Records)
	PrintClusterReport(o.Out, res)
	path := filepath.Join(o.OutDir, "results.json")
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return res, err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return res, err
	}
	fmt.Fprintf(o.Out, "\nresults: %s (logs in %s)\n", path, filepath.Join(o.OutDir, "logs"))
	return res, nil
}

// ClusterSummary is one line about one cluster measurement.
func ClusterSummary(r loadgen.Result) string {
	m := r.Metrics
	nodes := ""
	if a, ok := m[loadgen.MetricNodeACPUPerMsg]; ok {
		nodes = fmt.Sprintf(" (%s + %s)", Number(a), Number(m[loadgen.MetricNodeBCPUPerMsg]))
	}
	s := fmt.Sprintf("%s acks/s  p50 %s µs  p99 %s µs  CPU/msg: relays %s µs%s, redis %s µs, total %s µs  (CPU: relays %s%%, redis %s%%, generator %s%%, others %s%%; relays' RSS %s MiB)",
		Number(m[loadgen.MetricRate]), Number(m[loadgen.MetricP50]), Number(m[loadgen.MetricP99]),
		Number(m[loadgen.MetricCPUPerMsg]), nodes, Number(m[loadgen.MetricRedisCPUPerMsg]), Number(m[loadgen.MetricTotalCPUPerMsg]),
		Number(m[loadgen.MetricServerCPU]), Number(m[loadgen.MetricRedisCPU]), Number(m[loadgen.MetricGenCPU]),
		Number(m[loadgen.MetricOtherCPU]), Number(m[loadgen.MetricRSS]))
	if r.Errors > 0 {
		s += fmt.Sprintf("  ERRORS %d: %s", r.Errors, r.FirstError)
	}
	return s
}

// clusterRows are the figures of the cluster report's table.
var clusterRows = []struct{ metric, label, unit string }{
	{loadgen.MetricRate, "ack throughput", "acks/s"},
	{loadgen.MetricP50, "ack round trip p50", "µs"},
	{loadgen.MetricP99, "ack round trip p99", "µs"},
	{loadgen.MetricP999, "ack round trip p99.9", "µs"},
	{loadgen.MetricCPUPerMsg, "CPU per message, relay processes", "µs"},
	{loadgen.MetricNodeACPUPerMsg, "CPU per message, senders' node", "µs"},
	{loadgen.MetricNodeBCPUPerMsg, "CPU per message, receivers' node", "µs"},
	{loadgen.MetricRedisCPUPerMsg, "CPU per message, redis-server", "µs"},
	{loadgen.MetricTotalCPUPerMsg, "CPU per message, total", "µs"},
	{loadgen.MetricServerCPU, "CPU, relay processes", "% core"},
	{loadgen.MetricRedisCPU, "CPU, redis-server", "% core"},
	{loadgen.MetricGenCPU, "CPU, generator", "% core"},
	{loadgen.MetricOtherCPU, "CPU, other processes", "% core"},
	{loadgen.MetricRSS, "RSS, relay processes", "MiB"},
}

// PrintClusterReport prints the medians of every setup side by side, then
// the targets.
func PrintClusterReport(w io.Writer, res *ClusterResults) {
	med := ClusterMedians(res.Records)
	fmt.Fprintf(w, "\nmedians of %d round(s); %s: two p2pd nodes and Redis, %s: one p2pd node, %s: two Node relays on socket.io's Redis adapter\n\n",
		res.Rounds, SetupP2PDCluster, SetupP2PD, SetupNodeCluster)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "figure\t%s\t\n", strings.Join(res.Setups, "\t"))
	for _, row := range clusterRows {
		fmt.Fprintf(tw, "%s (%s)", row.label, row.unit)
		for _, s := range res.Setups {
			v, ok := med[s][row.metric]
			if !ok {
				v = math.NaN()
			}
			fmt.Fprintf(tw, "\t%s", Number(v))
		}
		fmt.Fprintf(tw, "\t\n")
	}
	_ = tw.Flush()
	if len(res.Verdicts) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "target\tratio\t\t\t\n")
		for _, v := range res.Verdicts {
			target, verdict := "context", ""
			if v.Target != 0 {
				op := "<="
				if v.Higher {
					op = ">="
				}
				target, verdict = fmt.Sprintf("%s %.2fx", op, v.Target), "FAIL"
				if v.Pass {
					verdict = "PASS"
				}
			}
			fmt.Fprintf(tw, "%s (%s %s against %s)\t%.2fx\t%s\t%s\t\n", v.Label,
				v.Of, Number(v.Median[0]), Number(v.Median[1]), v.Ratio, target, verdict)
		}
		_ = tw.Flush()
	}
	targets, missed := 0, 0
	for _, v := range res.Verdicts {
		if v.Target != 0 {
			targets++
			if v.Missed() {
				missed++
			}
		}
	}
	fmt.Fprintf(w, "\n%d of %d targets met; took %s\n", targets-missed, targets, seconds(res.Elapsed))
	disturbed := 0
	for _, rec := range res.Records {
		if rec.Metrics[loadgen.MetricOtherCPU] > BusyThreshold {
			disturbed++
		}
		if rec.Errors > 0 {
			fmt.Fprintf(w, "WARNING: %s round %d: %d errors, first: %s\n", rec.Relay, rec.Round, rec.Errors, rec.FirstError)
		}
	}
	if disturbed > 0 {
		fmt.Fprintf(w, "WARNING: other processes used more than %d%% of a core during %d of %d measurements: "+
			"the figures are disturbed; run again on an idle machine\n", BusyThreshold, disturbed, len(res.Records))
	}
}

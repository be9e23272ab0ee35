// Command p2pbench measures p2pd against the reference relay on Node's
// socket.io 4, side by side on one machine: see the README's Performance
// section. bench/run.sh builds what it needs and runs it.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/alecthomas/kong"

	"github.com/p2prelay/p2prelay/bench/harness"
	"github.com/p2prelay/p2prelay/bench/loadgen"
)

// CLI is p2pbench's command line.
type CLI struct {
	Run     RunCmd     `cmd:"" default:"withargs" help:"Run the side-by-side benchmark (the default command)."`
	Cluster ClusterCmd `cmd:"" help:"Run the cluster benchmark: pairs across two p2pd nodes sharing Redis, against one p2pd node and against two Node relays on socket.io's Redis adapter."`
	Profile ProfileCmd `cmd:"" help:"Run one scenario against p2pd serving pprof (--pprof-listen) and save its CPU and allocation profiles."`
	One     OneCmd     `cmd:"" help:"Run one scenario against a relay that is already running, and print what it measured."`
	Verbose bool       `help:"Log progress to stderr." short:"v"`
}

// ScenarioFlags say what the scenarios do.
type ScenarioFlags struct {
	LatencyPairs    int           `help:"Pairs making sequential ack round trips (latency): 1 for a relay with nothing else to do, more for latency under load." default:"1"`
	Pairs           int           `help:"Pairs driving the throughput scenarios (ack, emit)." default:"32"`
	AckWindow       int           `help:"Acks each pair keeps outstanding (ack)." default:"64"`
	EmitWindow      int           `help:"Messages each pair keeps in flight, sent but not yet delivered (emit)." default:"256"`
	Payload         int           `help:"Characters of the string each message carries." default:"64"`
	Warmup          time.Duration `help:"Load before each measured window." default:"1s"`
	Duration        time.Duration `help:"Measured window of the load scenarios." default:"5s"`
	Devices         int           `help:"Devices the devices scenario connects and pairs (even)." default:"5000"`
	PairWindow      int           `help:"Pairing requests in flight at once (devices)." default:"256"`
	DialConcurrency int           `help:"Connections opened at once." default:"64"`
	FleetPairs      int           `help:"Pairs of the fleet scenarios, each sending acks at --fleet-rate (fleet) or ten times that (fleet-10x)." default:"5000"`
	FleetRate       float64       `help:"Acks each pair of the fleet sends per second, on average." default:"1"`
	FleetJitter     float64       `help:"How far each interval between a pair's sends may stray from the mean, as a fraction of it." default:"0.1"`
	FleetWarmup     time.Duration `help:"Load before the fleet's measured window." default:"5s"`
	FleetDuration   time.Duration `help:"Measured window of the fleet scenarios." default:"10s"`
}

func (f ScenarioFlags) config() loadgen.Config {
	c := loadgen.DefaultConfig()
	c.LatencyPairs, c.Pairs, c.AckWindow, c.EmitWindow = f.LatencyPairs, f.Pairs, f.AckWindow, f.EmitWindow
	c.Payload, c.Warmup, c.Duration = f.Payload, f.Warmup, f.Duration
	c.Devices, c.PairWindow, c.DialConcurrency = f.Devices, f.PairWindow, f.DialConcurrency
	c.FleetPairs, c.FleetRate, c.FleetJitter = f.FleetPairs, f.FleetRate, f.FleetJitter
	c.FleetWarmup, c.FleetDuration = f.FleetWarmup, f.FleetDuration
	return c
}

// RelayFlags say how to start the relays.
type RelayFlags struct {
	P2PD         string        `name:"p2pd" help:"The p2pd binary." required:"" type:"existingfile"`
	Node         string        `help:"The Node.js binary." default:"node"`
	NodeRelay    string        `help:"The reference relay's script." default:"bench/node-relay/relay.mjs" type:"existingfile"`
	NodeUntuned  bool          `help:"Run the reference relay without the tunings socket.io's documentation recommends."`
	PingInterval time.Duration `help:"Heartbeat interval of both relays." default:"25s"`
	PingTimeout  time.Duration `help:"Heartbeat timeout of both relays." default:"20s"`
	Pin          bool          `help:"Pin the load generator to CPU 0 and the relay under test to CPU 1, so that each has a core of its own: reproducible figures, and a generator that never takes the relay's CPU. --no-pin lets them share both cores." default:"true" negatable:""`
}

func (f RelayFlags) settings() harness.Settings {
	s := harness.DefaultSettings
	s.PingInterval, s.PingTimeout = f.PingInterval, f.PingTimeout
	return s
}

// relays returns how to start p2pd and the reference relay, pinned to
// CPU 1 (and this process to CPU 0) when f.Pin.
func (f RelayFlags) relays() (p2pd, node harness.Relay, err error) {
	var tok [16]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return p2pd, node, err
	}
	p2pd = harness.P2PD(f.P2PD, hex.EncodeToString(tok[:]), f.settings())
	node = harness.Node(f.Node, f.NodeRelay, f.settings(), f.NodeUntuned)
	if !f.Pin {
		return p2pd, node, nil
	}
	if runtime.NumCPU() < 2 {
		return p2pd, node, errors.New("pinning needs two CPUs, this machine has one: pass --no-pin")
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return p2pd, node, errors.New("pinning needs taskset (util-linux): install it or pass --no-pin")
	}
	if err := harness.PinSelf(0); err != nil {
		return p2pd, node, err
	}
	// One core, one P: a goroutine the network wakes runs on the thread
	// that polled it, instead of another thread being woken to run it,
	// a hand-off that costs more than the generator's own work when
	// sends are light and spread out (the fleet).
	runtime.GOMAXPROCS(1)
	return p2pd.Pinned("1"), node.Pinned("1"), nil
}

// RunCmd runs the benchmark.
type RunCmd struct {
	RelayFlags
	ScenarioFlags
	Rounds     int           `help:"Rounds; the relays alternate which goes first." default:"5"`
	Scenarios  []string      `help:"Scenarios each round runs." default:"fleet,fleet-10x,latency,ack,emit,devices" enum:"fleet,fleet-10x,latency,ack,emit,devices"`
	BigDevices *int          `help:"Devices of the final idle run on each relay (default 10,000, or 100,000 with --big); 0 skips it."`
	Big        bool          `help:"Only the big run: 100,000 idle paired devices (--big-devices) on each relay, from as many loopback addresses as the ephemeral ports need. Needs about 250,000 open files (run.sh raises the limit) and a few GiB of memory."`
	Quick      bool          `help:"A quick look (about a minute and a half): 1 round, 0.5s warm-up, 2s windows, 1,000 devices, a fleet of 1,000 pairs with 1s warm-up and 3s windows, no big run."`
	Out        string        `help:"Directory for the relays' logs and results.json (default: a new temporary directory)." type:"path"`
	Strict     bool          `help:"Exit with status 3 when a target is missed."`
	QuietWait  time.Duration `help:"How long each measurement may wait for other processes to leave the cores alone." default:"5s"`
	Redo       int           `help:"Measure again, on a fresh process, up to this many times when other processes used more than 10% of a core during a measurement; the least disturbed counts." default:"0"`
	Label      string        `help:"What is measured, for the report (run.sh passes the commit p2pd is built from)."`
}

// Run runs the benchmark.
func (c *RunCmd) Run(ctx context.Context, log *slog.Logger) error {
	cfg := c.config()
	rounds, big := c.Rounds, 10000
	switch {
	case c.Big && c.Quick:
		return errors.New("--big and --quick do not go together")
	case c.Big:
		rounds, big = 0, 100000
	case c.Quick:
		rounds, big = 1, 0
		cfg.Warmup, cfg.Duration, cfg.Devices = 500*time.Millisecond, 2*time.Second, 1000
		cfg.FleetPairs, cfg.FleetWarmup, cfg.FleetDuration = 1000, time.Second, 3*time.Second
		cfg.Settle = loadgen.Settle{Every: 250 * time.Millisecond, Min: 2 * time.Second, Stable: time.Second, Max: 5 * time.Second, Tolerance: 0.01}
	}
	if c.BigDevices != nil {
		big = *c.BigDevices
	}
	out, err := outDir(c.Out)
	if err != nil {
		return err
	}
	p2pd, node, err := c.relays()
	if err != nil {
		return err
	}
	res, err := harness.Bench(ctx, harness.Options{
		Relays:     [2]harness.Relay{p2pd, node},
		Rounds:     rounds,
		Scenarios:  c.Scenarios,
		Config:     cfg,
		BigDevices: big,
		Machine:    c.machine(),
		QuietWait:  c.QuietWait,
		Redo:       c.Redo,
		OutDir:     out,
		Out:        os.Stdout,
		Logger:     log,
	})
	if err != nil {
		return err
	}
	return strictExit(c.Strict, res.Verdicts)
}

func (c *RunCmd) machine() harness.Machine {
	m := harness.Describe(c.Node, c.P2PD, c.Pin)
	m.Label = c.Label
	return m
}

// ClusterCmd runs the cluster benchmark.
type ClusterCmd struct {
	RelayFlags
	NodeCluster string        `help:"The reference relay's cluster script, on socket.io's Redis adapter." default:"bench/node-relay/cluster.mjs" type:"existingfile"`
	RedisServer string        `help:"The redis-server binary; each measurement starts its own on a free port of 127.0.0.1." default:"redis-server"`
	Pairs       int           `help:"Pairs, each with its sender on the first node and its receiver on the second." default:"32"`
	AckWindow   int           `help:"Acks each pair keeps outstanding." default:"64"`
	Payload     int           `help:"Characters of the string each message carries." default:"64"`
	Warmup      time.Duration `help:"Load before each measured window." default:"1s"`
	Duration    time.Duration `help:"Measured window." default:"5s"`
	Rounds      int           `help:"Rounds; the setups take turns going first." default:"3"`
	Quick       bool          `help:"A quick look: 1 round, 0.5s warm-up, 2s windows."`
	Out         string        `help:"Directory for the processes' logs and results.json (default: a new temporary directory)." type:"path"`
	Strict      bool          `help:"Exit with status 3 when a target is missed."`
	QuietWait   time.Duration `help:"How long each measurement may wait for other processes to leave the cores alone." default:"5s"`
	Label       string        `help:"What is measured, for the report (run.sh passes the commit p2pd is built from)."`
}

// Run runs the cluster benchmark.
func (c *ClusterCmd) Run(ctx context.Context, log *slog.Logger) error {
	cfg := loadgen.DefaultConfig()
	cfg.Pairs, cfg.AckWindow, cfg.Payload = c.Pairs, c.AckWindow, c.Payload
	cfg.Warmup, cfg.Duration = c.Warmup, c.Duration
	rounds := c.Rounds
	if c.Quick {
		rounds, cfg.Warmup, cfg.Duration = 1, 500*time.Millisecond, 2*time.Second
	}
	redisBin, err := exec.LookPath(c.RedisServer)
	if err != nil {
		return fmt.Errorf("the cluster benchmark needs redis-server (Debian: apt-get install redis-server): %w", err)
	}
	out, err := outDir(c.Out)
	if err != nil {
		return err
	}
	p2pd, node, err := c.relays()
	if err != nil {
		return err
	}
	redis := func(dir string, port int) harness.Relay {
		r := harness.RedisServer(redisBin, dir, port)
		if c.Pin {
			r = r.Pinned("1")
		}
		return r
	}
	m := harness.Describe(c.Node, c.P2PD, c.Pin)
	m.Label = c.Label
	res, err := harness.Cluster(ctx, harness.ClusterOptions{
		Setups: []harness.Setup{
			harness.P2PDNodes(harness.SetupP2PDCluster, p2pd, 2),
			harness.P2PDNodes(harness.SetupP2PD, p2pd, 1),
			harness.NodeCluster(harness.SetupNodeCluster, node, c.NodeCluster, 2),
		},
		Redis:     redis,
		Rounds:    rounds,
		Config:    cfg,
		QuietWait: c.QuietWait,
		Machine:   m,
		OutDir:    out,
		Out:       os.Stdout,
		Logger:    log,
	})
	if err != nil {
		return err
	}
	return strictExit(c.Strict, res.Verdicts)
}

// ProfileCmd profiles p2pd under one scenario.
type ProfileCmd struct {
	RelayFlags
	ScenarioFlags
	Scenario string        `arg:"" help:"Scenario to profile: fleet, fleet-10x, latency, ack, emit or devices." enum:"fleet,fleet-10x,latency,ack,emit,devices" default:"ack"`
	Seconds  time.Duration `help:"Length of the CPU profile of the devices scenario (the load scenarios profile their measured window)." default:"10s"`
	Out      string        `help:"Directory for the profiles (default: a new temporary directory)." type:"path"`
}

// Run profiles.
func (c *ProfileCmd) Run(ctx context.Context, log *slog.Logger) error {
	out, err := outDir(c.Out)
	if err != nil {
		return err
	}
	p2pd, _, err := c.relays()
	if err != nil {
		return err
	}
	return harness.Profile(ctx, harness.ProfileOptions{
		Relay: p2pd, Scenario: c.Scenario, Config: c.config(), Seconds: c.Seconds,
		OutDir: out, Out: os.Stdout, Logger: log,
	})
}

// OneCmd runs one scenario against a running relay.
type OneCmd struct {
	ScenarioFlags
	Scenario  string `arg:"" help:"Scenario: fleet, fleet-10x, latency, ack, emit, devices or cluster." enum:"fleet,fleet-10x,latency,ack,emit,devices,cluster"`
	URL       string `name:"url" help:"The relay's URL (http://127.0.0.1:PORT)." required:""`
	PID       int    `name:"pid" help:"The relay's process id, whose CPU time and memory are measured." required:""`
	PeerURL   string `name:"peer-url" help:"Another node of the relay's cluster, where the second device of every pair connects (default: --url)."`
	PeerPID   int    `name:"peer-pid" help:"The process id of --peer-url's node, measured with --pid's."`
	RedisPID  int    `name:"redis-pid" help:"The process id of the Redis server the nodes share, whose CPU is reported apart."`
	Check     bool   `help:"Run the protocol check first (across --url and --peer-url)."`
	FirstOnly bool   `name:"first-value-only" help:"In the protocol check, expect an ack answered with several values to arrive with the first alone (socket.io's Redis adapter between nodes)."`
	JSON      bool   `name:"json" help:"Print the result as JSON."`
}

// Run runs the scenario.
func (c *OneCmd) Run(ctx context.Context, log *slog.Logger) error {
	cfg := c.config()
	cfg.Logger = log
	if err := harness.RaiseFileLimit(cfg.FilesNeeded()); err != nil {
		return err
	}
	peer := c.PeerURL
	if peer == "" {
		peer = c.URL
	}
	if c.Check {
		if err := loadgen.CheckCluster(ctx, c.URL, peer, c.FirstOnly); err != nil {
			return err
		}
	}
	res, err := loadgen.Run(ctx, cfg, c.Scenario, loadgen.Target{URL: c.URL, PID: c.PID, PeerURL: peer, PeerPID: c.PeerPID, RedisPID: c.RedisPID})
	if err != nil {
		return err
	}
	if c.JSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	fmt.Println(harness.Summary(res))
	return nil
}

// outDir returns dir, created, or a new temporary directory.
func outDir(dir string) (string, error) {
	if dir == "" {
		return os.MkdirTemp("", "p2pbench-")
	}
	return dir, os.MkdirAll(dir, 0o755)
}

type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }

func main() {
	// The generator's garbage collector runs less often: its memory does
	// not matter here, its CPU time does (the relay's share of the cores).
	debug.SetGCPercent(400)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var cli CLI
	kctx := kong.Parse(&cli,
		kong.Name("p2pbench"),
		kong.Description("Measure p2pd against the reference relay on Node's socket.io 4, side by side."),
		kong.UsageOnError(),
		kong.BindTo(ctx, (*context.Context)(nil)),
	)
	level := slog.LevelWarn
	if cli.Verbose {
		level = slog.LevelDebug
	}
	kctx.Bind(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
	if err := kctx.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "p2pbench:", err)
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

// strictExit is the exit of a run with --strict: status 3 when a verdict
// missed its target.
func strictExit[V interface{ Missed() bool }](strict bool, verdicts []V) error {
	if strict {
		for _, v := range verdicts {
			if v.Missed() {
				return exitError{3, harness.ErrFailed}
			}
		}
	}
	return nil
}

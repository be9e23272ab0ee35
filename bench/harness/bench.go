package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/p2prelay/p2prelay/bench/loadgen"
)

// Options configure a benchmark run.
type Options struct {
	// Relays are the relays compared, p2pd first: ratios are Relays[0]
	// over Relays[1].
	Relays [2]Relay
	// Rounds is how many times every scenario runs on each relay; the
	// order of the relays alternates from one round to the next.
	Rounds int
	// Scenarios run each round, in this order.
	Scenarios []string
	// Config is what the scenarios do.
	Config loadgen.Config
	// BigDevices, when positive, ends the run with one devices scenario of
	// that many devices on each relay (the "10,000 idle devices" run).
	BigDevices int
	// OutDir receives the relays' logs and results.json.
	OutDir string
	// QuietWait is how long each measurement may wait for other processes
	// to leave the cores alone (below BusyThreshold) before it starts.
	QuietWait time.Duration
	// Machine describes where the run takes place.
	Machine Machine
	// Out receives the report.
	Out io.Writer
	// Logger receives progress.
	Logger *slog.Logger
}

// Record is one scenario's run on one relay.
type Record struct {
	Round int `json:"round"` // 0 for the big run
	// Background is what other processes used just before, percent of one core.
	Background float64 `json:"background_cpu_pct"`
	Relay      string  `json:"relay"`
	Elapsed    float64 `json:"elapsed_s"`
	loadgen.Result
}

// Results is everything a run measured.
type Results struct {
	Started  time.Time      `json:"started"`
	Machine  Machine        `json:"machine"`
	Elapsed  float64        `json:"elapsed_s"`
	Relays   [2]string      `json:"relays"`
	Argv     [2][]string    `json:"argv"`
	Rounds   int            `json:"rounds"`
	Config   loadgen.Config `json:"config"`
	Records  []Record       `json:"records"`
	Big      []Record       `json:"big,omitempty"`
	Verdicts []Verdict      `json:"verdicts"`
}

// Bench runs the benchmark and prints its report.
func Bench(ctx context.Context, o Options) (*Results, error) {
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	big := o.Config
	big.Devices = o.BigDevices
	if o.BigDevices > 0 {
		// Checked now, not after the rounds it would end.
		if err := big.Validate(); err != nil {
			return nil, fmt.Errorf("big devices: %w", err)
		}
	}
	if o.Rounds < 1 {
		return nil, fmt.Errorf("rounds must be at least 1, got %d", o.Rounds)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Join(o.OutDir, "logs"), 0o755); err != nil {
		return nil, err
	}
	if err := RaiseFileLimit(max(o.Config.FilesNeeded(), big.FilesNeeded())); err != nil {
		return nil, err
	}
	res := &Results{Started: time.Now(), Machine: o.Machine, Rounds: o.Rounds, Config: o.Config}
	fmt.Fprintf(o.Out, "machine: %s\n", o.Machine)
	for i, r := range o.Relays {
		res.Relays[i] = r.Name
		res.Argv[i] = r.Argv
	}
	b := &bench{o: o}

	fmt.Fprintf(o.Out, "protocol check:")
	for _, r := range o.Relays {
		if err := b.check(ctx, r); err != nil {
			fmt.Fprintln(o.Out)
			return nil, err
		}
		fmt.Fprintf(o.Out, " %s ok", r.Name)
	}
	fmt.Fprintln(o.Out)

	for round := 1; round <= o.Rounds; round++ {
		order := []Relay{o.Relays[0], o.Relays[1]}
		if round%2 == 0 {
			slices.Reverse(order)
		}
		fmt.Fprintf(o.Out, "\nround %d/%d (%s first)\n", round, o.Rounds, order[0].Name)
		for _, sc := range o.Scenarios {
			for _, r := range order {
				rec, err := b.once(ctx, round, r, sc, o.Config)
				if err != nil {
					return res, err
				}
				res.Records = append(res.Records, rec)
				fmt.Fprintf(o.Out, "  %-8s %-5s %s\n", sc, r.Name, Summary(rec.Result))
			}
		}
	}
	if o.BigDevices > 0 {
		fmt.Fprintf(o.Out, "\n%d idle paired devices\n", o.BigDevices)
		for _, r := range o.Relays {
			rec, err := b.once(ctx, 0, r, loadgen.ScenarioDevices, big)
			if err != nil {
				return res, err
			}
			res.Big = append(res.Big, rec)
			fmt.Fprintf(o.Out, "  %-8s %-5s %s\n", loadgen.ScenarioDevices, r.Name, Summary(rec.Result))
		}
	}
	res.Elapsed = time.Since(res.Started).Seconds()
	res.Verdicts = Judge(res)
	PrintReport(o.Out, res)
	path := filepath.Join(o.OutDir, "results.json")
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return res, err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return res, err
	}
	fmt.Fprintf(o.Out, "\nresults: %s (relay logs in %s)\n", path, filepath.Join(o.OutDir, "logs"))
	return res, nil
}

type bench struct {
	o Options
}

// BusyThreshold is the CPU use of other processes, in percent of one core,
// above which a measurement counts as disturbed.
const BusyThreshold = 10

// awaitQuiet waits, up to QuietWait, until other processes use at most
// BusyThreshold of a core, and returns what they used last.
func (b *bench) awaitQuiet(ctx context.Context) float64 {
	deadline := time.Now().Add(b.o.QuietWait)
	for {
		bg := loadgen.Background(ctx, 500*time.Millisecond)
		if bg <= BusyThreshold || !time.Now().Before(deadline) || ctx.Err() != nil {
			return bg
		}
	}
}

// check starts a relay and runs the protocol check on it.
func (b *bench) check(ctx context.Context, r Relay) error {
	p, err := r.Start(ctx, filepath.Join(b.o.OutDir, "logs", "check-"+r.Name+".log"))
	if err != nil {
		return err
	}
	defer p.Stop()
	if err := loadgen.Check(ctx, p.URL); err != nil {
		return fmt.Errorf("%s fails the protocol check, so the figures would not compare like with like: %w", r.Name, err)
	}
	return nil
}

// once runs one scenario on a fresh relay process.
func (b *bench) once(ctx context.Context, round int, r Relay, sc string, cfg loadgen.Config) (Record, error) {
	rec := Record{Round: round, Relay: r.Name}
	name := fmt.Sprintf("r%d-%s-%s.log", round, sc, r.Name)
	if round == 0 {
		name = fmt.Sprintf("big-%s-%s.log", sc, r.Name)
	}
	rec.Background = b.awaitQuiet(ctx)
	start := time.Now()
	p, err := r.Start(ctx, filepath.Join(b.o.OutDir, "logs", name))
	if err != nil {
		return rec, err
	}
	defer p.Stop()
	cfg.Logger = b.o.Logger.With("relay", r.Name, "round", round)
	res, err := loadgen.Run(ctx, cfg, sc, loadgen.Target{URL: p.URL, PID: p.PID})
	if exited, how := p.Exited(); exited {
		return rec, fmt.Errorf("%s, %s round %d: %w (%v); see %s", r.Name, sc, round, errStopped, how, p.Log)
	}
	if err != nil {
		return rec, fmt.Errorf("%s, %s round %d: %w", r.Name, sc, round, err)
	}
	rec.Result = res
	rec.Elapsed = time.Since(start).Seconds()
	return rec, nil
}

// RaiseFileLimit raises this process's open-file limit to its hard limit,
// which the relays it starts inherit, and fails when that leaves fewer
// than need descriptors.
func RaiseFileLimit(need int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	// Set it even when Go already raised it at start-up: only a limit the
	// program set itself is passed on to the processes it starts.
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raise the open-file limit: %w", err)
	}
	if lim.Cur < uint64(need) {
		return fmt.Errorf("the open-file limit is %d, and this run needs %d: raise it (ulimit -n) or connect fewer devices", lim.Cur, need)
	}
	return nil
}

// ErrFailed is returned when a target was missed.
var ErrFailed = errors.New("p2pd missed a target")

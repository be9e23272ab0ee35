package harness

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/p2prelay/p2prelay/bench/loadgen"
)

// PprofEnv is the environment variable of p2pd's --pprof-listen: p2pd
// serves net/http/pprof on the address it names ("127.0.0.1:0" picks a
// port) and logs `msg="serving pprof" addr=HOST:PORT`.
const PprofEnv = "P2PD_PPROF_LISTEN"

// ProfileOptions configure a profiling run.
type ProfileOptions struct {
	// Relay is p2pd (it honours PprofEnv).
	Relay Relay
	// Scenario is the scenario profiled.
	Scenario string
	// Config is what the scenario does.
	Config loadgen.Config
	// Seconds is how long the CPU profile of the devices scenario lasts
	// (the load scenarios profile their measured window).
	Seconds time.Duration
	// OutDir receives the profiles and the relay's log.
	OutDir string
	// Out receives the report; Logger, progress.
	Out    io.Writer
	Logger *slog.Logger
}

// Profile runs one scenario against p2pd serving pprof and saves a CPU
// profile of the measured window and allocation profiles from before and
// after it.
func Profile(ctx context.Context, o ProfileOptions) error {
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := RaiseFileLimit(o.Config.FilesNeeded()); err != nil {
		return err
	}
	r := o.Relay
	r.Env = append(r.Env, PprofEnv+"=127.0.0.1:0")
	p, err := r.Start(ctx, filepath.Join(o.OutDir, "relay.log"))
	if err != nil {
		return err
	}
	defer p.Stop()
	addr, err := p.awaitLine(ctx, pprofReady, 5*time.Second)
	if err != nil {
		return fmt.Errorf("%s serves no pprof (it must honour %s): %w", r.Name, PprofEnv, err)
	}
	base := "http://" + addr + "/debug/pprof/"
	save := func(path, name string) error {
		return fetch(ctx, base+path, filepath.Join(o.OutDir, name))
	}

	cpuDone := make(chan error, 1)
	cpuErr := sync.OnceValue(func() error { return <-cpuDone })
	started := false
	var hookErr error
	cfg := o.Config
	cfg.Logger = o.Logger
	cfg.OnMeasure = func(window time.Duration) {
		if window == 0 {
			window = o.Seconds
		}
		started = true
		hookErr = save("allocs", "allocs-before.pprof")
		secs := int(math.Ceil(window.Seconds()))
		go func() { cpuDone <- save(fmt.Sprintf("profile?seconds=%d", secs), "cpu.pprof") }()
	}
	var idleErr error
	cfg.OnIdle = func() {
		// With every device still connected: a heap profile, the runtime's
		// memory statistics after a collection, the goroutines, and what
		// the relay does with its CPU while they idle.
		// The first collects garbage, so the statistics are of live memory;
		// the CPU profile waits for the scenario's to end.
		if err := cpuErr(); err != nil {
			idleErr = err
			return
		}
		for _, f := range [][2]string{{"heap?gc=1", "heap-idle.pprof"}, {"heap?debug=1", "memstats-idle.txt"}, {"goroutine", "goroutine-idle.pprof"}, {"profile?seconds=5", "cpu-idle.pprof"}} {
			if err := save(f[0], f[1]); err != nil && idleErr == nil {
				idleErr = err
			}
		}
	}
	res, err := loadgen.Run(ctx, cfg, o.Scenario, loadgen.Target{URL: p.URL, PID: p.PID})
	if err != nil {
		return err
	}
	if !started {
		return fmt.Errorf("scenario %s never started measuring", o.Scenario)
	}
	if hookErr != nil {
		return hookErr
	}
	if idleErr != nil {
		return idleErr
	}
	if err := cpuErr(); err != nil {
		return err
	}
	for path, name := range map[string]string{"allocs": "allocs-after.pprof", "heap": "heap.pprof", "goroutine": "goroutine.pprof"} {
		if err := save(path, name); err != nil {
			return err
		}
	}
	// The binary goes with its profiles: pprof needs it for symbols.
	bin := filepath.Join(o.OutDir, filepath.Base(r.Bin))
	if err := copyFile(r.Bin, bin); err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "%s %s: %s\n", r.Name, o.Scenario, Summary(res))
	if o.Scenario == loadgen.ScenarioDevices {
		if line, err := idleBreakdown(filepath.Join(o.OutDir, "memstats-idle.txt"), o.Config.Devices); err == nil {
			fmt.Fprintln(o.Out, line)
		} else {
			fmt.Fprintf(o.Out, "no idle memory breakdown: %v\n", err)
		}
	}
	fmt.Fprintf(o.Out, "profiles in %s:\n", o.OutDir)
	fmt.Fprintf(o.Out, "  go tool pprof -top %s %s\n", bin, filepath.Join(o.OutDir, "cpu.pprof"))
	fmt.Fprintf(o.Out, "  go tool pprof -top -sample_index=alloc_space -base %s %s %s\n", filepath.Join(o.OutDir, "allocs-before.pprof"),
		bin, filepath.Join(o.OutDir, "allocs-after.pprof"))
	return nil
}

// idleBreakdown reads the runtime.MemStats lines of a heap?debug=1 answer
// and says where an idle device's memory goes: live heap objects, heap
// spans in use (live objects plus the free space around them), goroutine
// stacks. Whole-process figures divided by devices, base included.
func idleBreakdown(file string, devices int) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	stats := map[string]float64{}
	for _, line := range strings.Split(string(data), "\n") {
		name, value, ok := strings.Cut(strings.TrimPrefix(line, "# "), " = ")
		if !ok || !strings.HasPrefix(line, "# ") {
			continue
		}
		if v, _, _ := strings.Cut(value, " "); v != "" {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				stats[name] = f
			}
		}
	}
	for _, name := range []string{"HeapAlloc", "HeapInuse", "Stack"} {
		if _, ok := stats[name]; !ok {
			return "", fmt.Errorf("%s: no %s", file, name)
		}
	}
	per := func(name string) float64 { return stats[name] / 1024 / float64(max(devices, 1)) }
	return fmt.Sprintf("idle, per device: live heap %.1f KiB, heap spans in use %.1f KiB, goroutine stacks %.1f KiB",
		per("HeapAlloc"), per("HeapInuse"), per("Stack")), nil
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o755)
}

// fetch saves what url answers in file.
func fetch(ctx context.Context, url, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, msg)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Package harness runs the side-by-side benchmark: it starts each relay
// under test as a fresh process per scenario, drives it with the load
// generator, alternates the relays round by round, and reports medians and
// ratios against the targets.
package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Relay says how to start one relay under test.
type Relay struct {
	// Name is how reports call it: "p2pd" or "node".
	Name string
	// Bin is the relay's executable (p2pd, or node for the reference relay).
	Bin string
	// Argv is the command line; the relay must listen on 127.0.0.1 on a
	// port it picks and say where in its output.
	Argv []string
	// Env is added to the harness's environment, from which every P2PD_*
	// variable is removed first.
	Env []string
	// Ready matches the output line that says where it listens; its first
	// group is host:port.
	Ready *regexp.Regexp
	// MaxDevices is how many devices the relay accepts as Argv starts it,
	// 0 for no limit; MaxDevicesFlag is the flag that raises it.
	MaxDevices     int
	MaxDevicesFlag string
}

// For returns the relay started to accept devices devices: with its limit
// raised when it has one below that, as it is otherwise.
func (r Relay) For(devices int) Relay {
	if r.MaxDevices == 0 || devices <= r.MaxDevices {
		return r
	}
	r.Argv = append(slices.Clip(r.Argv), r.MaxDevicesFlag, strconv.Itoa(devices))
	r.MaxDevices = devices
	return r
}

// Readiness lines of the two relays.
var (
	P2PDReady  = regexp.MustCompile(`msg="p2pd serving" addr=(\S+)`)
	NodeReady  = regexp.MustCompile(`(?m)^listening (\S+)$`)
	pprofReady = regexp.MustCompile(`msg="serving pprof" addr=(\S+)`)
)

// Proc is a running relay. The caller must Stop it.
type Proc struct {
	Name string
	PID  int
	URL  string // http://127.0.0.1:PORT
	Log  string // file holding its stdout and stderr

	cmd  *exec.Cmd
	done chan struct{}
	err  error // how it exited, once done is closed
}

// startTimeout bounds how long a relay may take to listen.
const startTimeout = 15 * time.Second

// Start starts the relay with its output going to logPath, and returns
// once it listens.
func (r Relay) Start(ctx context.Context, logPath string) (*Proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(r.Argv[0], r.Argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(relayEnv(), r.Env...)
	// The relay dies with the harness.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", r.Name, err)
	}
	p := &Proc{Name: r.Name, PID: cmd.Process.Pid, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	addr, err := p.awaitLine(ctx, r.Ready, startTimeout)
	if err != nil {
		p.Stop()
		return nil, fmt.Errorf("%s did not start: %w", r.Name, err)
	}
	p.URL = "http://" + addr
	return p, nil
}

// relayEnv is the harness's environment without P2PD_* variables, so that
// nothing but the harness's flags (and Relay.Env) configures p2pd.
func relayEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "P2PD_") {
			env = append(env, kv)
		}
	}
	return env
}

// awaitLine polls the relay's log until re matches, and returns its first
// group.
func (p *Proc) awaitLine(ctx context.Context, re *regexp.Regexp, wait time.Duration) (string, error) {
	deadline := time.Now().Add(wait)
	for {
		out, _ := os.ReadFile(p.Log)
		if m := re.FindSubmatch(out); m != nil {
			return string(m[1]), nil
		}
		select {
		case <-p.done:
			return "", fmt.Errorf("it exited (%v): %s", p.err, tail(out))
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no sign of listening after %s: %s", wait, tail(out))
		}
	}
}

// Exited reports whether the relay has exited, and how.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Stop ends the relay: SIGTERM, then SIGKILL if it is still there after
// 10 seconds. It returns once the process is gone.
func (p *Proc) Stop() {
	if exited, _ := p.Exited(); exited {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// tail returns the end of a relay's output, for error messages.
func tail(out []byte) string {
	out = bytes.TrimSpace(out)
	if len(out) > 600 {
		out = out[len(out)-600:]
	}
	if len(out) == 0 {
		return "(no output)"
	}
	return string(out)
}

// errStopped is returned when a relay exits in the middle of a scenario.
var errStopped = errors.New("the relay exited during the scenario")

// Settings are what both relays are started with, so that they run alike.
type Settings struct {
	PingInterval, PingTimeout time.Duration
	PairTimeout, AckTimeout   time.Duration
}

// DefaultSettings are both relays' defaults (and socket.io's heartbeat
// defaults).
var DefaultSettings = Settings{PingInterval: 25 * time.Second, PingTimeout: 20 * time.Second, PairTimeout: 10 * time.Second, AckTimeout: 30 * time.Second}

// P2PD returns how to start the p2pd binary bin: its product defaults
// except the per-device request rate, which the benchmark's devices exceed
// by design (--rate 0), on a loopback port of its choosing. The admin side
// stays on, with a token of the harness's making.
func P2PD(bin, adminToken string, s Settings, env ...string) Relay {
	return Relay{
		Name: "p2pd",
		Bin:  bin,
		Argv: []string{bin,
			"--listen", "127.0.0.1:0",
			"--admin-token", adminToken,
			"--ping-interval", s.PingInterval.String(),
			"--ping-timeout", s.PingTimeout.String(),
			"--pair-timeout", s.PairTimeout.String(),
			"--ack-timeout", s.AckTimeout.String(),
			"--rate", "0",
		},
		Env:   env,
		Ready: P2PDReady,
		// p2pd's default --max-devices.
		MaxDevices:     50000,
		MaxDevicesFlag: "--max-devices",
	}
}

// Node returns how to start the reference relay script with the node
// binary. Untuned leaves out the two tunings socket.io's documentation
// recommends (the bufferutil add-on, dropping each session's first HTTP
// request), to see what they are worth.
func Node(node, script string, s Settings, untuned bool) Relay {
	ms := func(d time.Duration) string { return fmt.Sprint(d.Milliseconds()) }
	r := Relay{
		Name: "node",
		Bin:  node,
		Argv: []string{node, script,
			"--host", "127.0.0.1",
			"--port", "0",
			"--ping-interval", ms(s.PingInterval),
			"--ping-timeout", ms(s.PingTimeout),
			"--pair-timeout", ms(s.PairTimeout),
			"--ack-timeout", ms(s.AckTimeout),
		},
		Ready: NodeReady,
	}
	if untuned {
		r.Argv = append(r.Argv, "--untuned")
		r.Env = append(r.Env, "WS_NO_BUFFER_UTIL=1")
	}
	return r
}

// Pinned returns the relay started on the CPUs cpus names (taskset's
// list syntax, such as "1"), through taskset, which execs it: the process
// id stays the relay's, and arguments appended later still reach it.
func (r Relay) Pinned(cpus string) Relay {
	r.Argv = append([]string{"taskset", "-c", cpus}, r.Argv...)
	return r
}

// Machine describes where a run took place, for its report.
type Machine struct {
	CPUs   int    `json:"cpus"`
	Model  string `json:"cpu_model"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
	Node   string `json:"node"`
	P2PD   string `json:"p2pd"`
	Pinned bool   `json:"pinned"`
	// Label names what was measured, such as the commit p2pd was built from.
	Label string `json:"label,omitempty"`
}

// Describe fills in a Machine; node and p2pd are the binaries run.
func Describe(node, p2pd string, pinned bool) Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), Pinned: pinned}
	if info, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(info), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
	}
	if rel, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(rel))
	}
	version := func(bin string) string {
		out, err := exec.Command(bin, "--version").Output()
		if err != nil {
			return "unknown"
		}
		return strings.TrimSpace(string(out))
	}
	m.Node, m.P2PD = version(node), version(p2pd)
	return m
}

func (m Machine) String() string {
	pin := ""
	if m.Pinned {
		pin = "; pinned: generator on CPU 0, relays on CPU 1"
	}
	label := ""
	if m.Label != "" {
		label = " (" + m.Label + ")"
	}
	return fmt.Sprintf("%d CPUs (%s), Linux %s; generator built with %s; node %s; p2pd %s%s%s", m.CPUs, m.Model, m.Kernel, m.Go, m.Node, m.P2PD, label, pin)
}

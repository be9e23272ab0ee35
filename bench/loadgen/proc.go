package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat: 100
// on every Linux architecture Go supports.
const clockTicks = 100

// ProcSample is a relay process's resource use at one instant, read from
// /proc/PID/stat and /proc/PID/status.
type ProcSample struct {
	At      time.Time
	CPU     time.Duration // user + system time of all its threads so far
	RSS     int64         // resident set size, bytes
	HWM     int64         // peak resident set size, bytes
	Threads int
}

// SampleProc reads process pid's CPU time and memory.
func SampleProc(pid int) (ProcSample, error) {
	s := ProcSample{At: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// fields are counted after its closing parenthesis, from field 3 on.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := bytes.Fields(stat[i+1:])
	if len(f) < 18 {
		return s, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseInt(string(f[11]), 10, 64) // field 14
	stime, err2 := strconv.ParseInt(string(f[12]), 10, 64) // field 15
	threads, err3 := strconv.Atoi(string(f[17]))           // field 20
	if err1 != nil || err2 != nil || err3 != nil {
		return s, fmt.Errorf("/proc/%d/stat: bad CPU or thread fields", pid)
	}
	s.CPU = time.Duration(utime+stime) * time.Second / clockTicks
	s.Threads = threads

	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, line := range bytes.Split(status, []byte{'\n'}) {
		switch {
		case bytes.HasPrefix(line, []byte("VmRSS:")):
			s.RSS = kB(line)
		case bytes.HasPrefix(line, []byte("VmHWM:")):
			s.HWM = kB(line)
		}
	}
	if s.RSS == 0 {
		return s, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
	}
	return s, nil
}

// kB parses a /proc/PID/status line "Name:   1234 kB" into bytes.
func kB(line []byte) int64 {
	f := bytes.Fields(line)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.ParseInt(string(f[1]), 10, 64)
	return n << 10
}

// SystemSample is the machine's CPU time so far, from /proc/stat, summed
// over all cores.
type SystemSample struct {
	// Busy is every non-idle time: user, nice, system, interrupts, steal.
	Busy time.Duration
	// SoftIRQ is the part of Busy spent in interrupts, such as the
	// loopback network's: the kernel also charges it to the process it
	// interrupted, so processes' CPU times add up to Busy.
	SoftIRQ time.Duration
}

// SampleSystem reads the machine's CPU time; zero when /proc/stat cannot
// be read.
func SampleSystem() SystemSample {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return SystemSample{}
	}
	line, _, _ := bytes.Cut(data, []byte{'\n'})
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return SystemSample{}
	}
	var v [8]int64 // user nice system idle iowait irq softirq steal
	for i := range v {
		v[i], _ = strconv.ParseInt(string(f[i+1]), 10, 64)
	}
	tick := func(n int64) time.Duration { return time.Duration(n) * time.Second / clockTicks }
	return SystemSample{Busy: tick(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]), SoftIRQ: tick(v[5] + v[6])}
}

// Sub returns the busy and interrupt time between an earlier sample and s.
func (s SystemSample) Sub(earlier SystemSample) (busy, softirq time.Duration) {
	return s.Busy - earlier.Busy, s.SoftIRQ - earlier.SoftIRQ
}

// SelfCPU returns the CPU time this process (the load generator) has used.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Settle says when a process's memory counts as settled: sampled every
// Every, after at least Min, once RSS has moved by at most Tolerance
// (relative) over the last Stable; after Max it is taken as it is.
type Settle struct {
	Every, Min, Stable, Max time.Duration
	Tolerance               float64
}

// DefaultSettle waits 3 to 15 seconds for RSS to hold within 1% for 2 seconds.
var DefaultSettle = Settle{Every: 250 * time.Millisecond, Min: 3 * time.Second, Stable: 2 * time.Second, Max: 15 * time.Second, Tolerance: 0.01}

// SettleRSS waits until process pid's RSS settles and returns the last
// sample, whether it settled, and how long it waited.
func SettleRSS(ctx context.Context, pid int, st Settle) (ProcSample, bool, time.Duration, error) {
	start := time.Now()
	var window []ProcSample
	tick := time.NewTicker(st.Every)
	defer tick.Stop()
	for {
		s, err := SampleProc(pid)
		if err != nil {
			return s, false, time.Since(start), err
		}
		window = append(window, s)
		for len(window) > 1 && s.At.Sub(window[0].At) > st.Stable {
			window = window[1:]
		}
		waited := time.Since(start)
		if waited >= st.Min && s.At.Sub(window[0].At) >= st.Stable-st.Every {
			lo, hi := window[0].RSS, window[0].RSS
			for _, w := range window {
				lo, hi = min(lo, w.RSS), max(hi, w.RSS)
			}
			if float64(hi-lo) <= st.Tolerance*float64(hi) {
				return s, true, waited, nil
			}
		}
		if waited >= st.Max {
			return s, false, waited, nil
		}
		select {
		case <-ctx.Done():
			return s, false, waited, ctx.Err()
		case <-tick.C:
		}
	}
}

// Background measures, over d, how busy the machine is with processes
// other than this one (and the relays it runs, when they idle): percent of
// one core.
func Background(ctx context.Context, d time.Duration) float64 {
	s0, g0, t0 := SampleSystem(), SelfCPU(), time.Now()
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	s1, g1 := SampleSystem(), SelfCPU()
	busy, _ := s1.Sub(s0)
	return 100 * max(busy-(g1-g0), 0).Seconds() / time.Since(t0).Seconds()
}

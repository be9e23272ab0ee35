package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat: 100
// on every Linux architecture Go supports.
const clockTicks = 100

// ProcSample is a relay process's resource use at one instant, read from
// /proc/PID/stat and /proc/PID/status; the counters from /proc/PID/io and
// its threads' status by SampleCounters.
type ProcSample struct {
	At      time.Time
	CPU     time.Duration // user + system time of all its threads so far
	RSS     int64         // resident set size, bytes
	HWM     int64         // peak resident set size, bytes
	Threads int

	Reads, Writes int64 // read and write system calls (read, recvmsg...; write, sendmsg, writev...)
	Switches      int64 // context switches of its live threads, voluntary or not
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

// SampleCounters adds to s process pid's read and write system calls and
// its threads' context switches so far.
func SampleCounters(pid int, s *ProcSample) error {
	io, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return err
	}
	for _, line := range bytes.Split(io, []byte{'\n'}) {
		switch k, v, _ := bytes.Cut(line, []byte(":")); string(k) {
		case "syscr":
			s.Reads, _ = strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
		case "syscw":
			s.Writes, _ = strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
		}
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return err
	}
	s.Switches = 0
	for _, t := range tasks {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
		if err != nil {
			continue // the thread has ended
		}
		for _, line := range bytes.Split(status, []byte{'\n'}) {
			if k, v, _ := bytes.Cut(line, []byte(":")); bytes.HasSuffix(k, []byte("ctxt_switches")) {
				n, _ := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
				s.Switches += n
			}
		}
	}
	return nil
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

// SampleGroup reads the processes pids (a cluster's nodes) and sums what
// they use: CPU time, RSS, peak RSS, threads and, with counters, read and
// write system calls and context switches.
func SampleGroup(pids []int, counters bool) (ProcSample, error) {
	var sum ProcSample
	for i, pid := range pids {
		s, err := SampleProc(pid)
		if err == nil && counters {
			err = SampleCounters(pid, &s)
		}
		if err != nil {
			return sum, fmt.Errorf("process %d: %w", pid, err)
		}
		if i == 0 {
			sum.At = s.At
		}
		sum.CPU += s.CPU
		sum.RSS += s.RSS
		sum.HWM += s.HWM
		sum.Threads += s.Threads
		sum.Reads += s.Reads
		sum.Writes += s.Writes
		sum.Switches += s.Switches
	}
	return sum, nil
}

// Others is the CPU time used so far by every process but this one and
// the relay's, read from /proc/*/stat: what else competes for the cores.
// A process that ends is counted through its parent's time for waited-for
// children; a process started since the earlier sample counts whole.
type Others struct {
	cpu map[int]time.Duration
}

// SampleOthers reads the CPU time of every process but this one and
// exclude (the relay's processes; 0 stands for none).
func SampleOthers(exclude ...int) Others {
	o := Others{cpu: make(map[int]time.Duration)}
	self := os.Getpid()
	dir, err := os.ReadDir("/proc")
	if err != nil {
		return o
	}
	for _, e := range dir {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self || slices.Contains(exclude, pid) {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(stat[i+1:])
		if len(f) < 15 {
			continue
		}
		var ticks int64
		for _, field := range f[11:15] { // utime, stime, cutime, cstime
			n, _ := strconv.ParseInt(string(field), 10, 64)
			ticks += n
		}
		o.cpu[pid] = time.Duration(ticks) * time.Second / clockTicks
	}
	return o
}

// Since returns the CPU time the other processes used between an earlier
// sample and o. A process that ended in between reappears, whole, in its
// parent's time for children: its time before the earlier sample is
// taken off again.
func (o Others) Since(earlier Others) time.Duration {
	var d time.Duration
	for pid, t := range o.cpu {
		d += t - earlier.cpu[pid]
	}
	for pid, t := range earlier.cpu {
		if _, ok := o.cpu[pid]; !ok {
			d -= t
		}
	}
	return max(d, 0)
}

// SoftIRQ returns the machine's interrupt time so far (all cores), from
// /proc/stat: mostly the loopback network's work, which the kernel charges
// to whichever process it interrupts, or to none.
func SoftIRQ() time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := bytes.Cut(data, []byte{'\n'})
	f := bytes.Fields(line)
	if len(f) < 8 || string(f[0]) != "cpu" {
		return 0
	}
	irq, _ := strconv.ParseInt(string(f[6]), 10, 64)
	soft, _ := strconv.ParseInt(string(f[7]), 10, 64)
	return time.Duration(irq+soft) * time.Second / clockTicks
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

// Background measures, over d, how much CPU other processes use: percent
// of one core.
func Background(ctx context.Context, d time.Duration) float64 {
	o0, t0 := SampleOthers(0), time.Now()
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	return 100 * SampleOthers(0).Since(o0).Seconds() / time.Since(t0).Seconds()
}

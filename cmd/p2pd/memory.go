package main

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"syscall"
	"time"
)

// MemoryFlags tune the Go runtime's memory use.
type MemoryFlags struct {
	GCPercent int           `help:"Go garbage collector target (GOGC) while the relay is busy: higher trades memory under load for less CPU per message. With its cores less than half used, the target is Go's default, 100, or this when lower." default:"400" env:"P2PD_GC_PERCENT"`
	IdleTrim  time.Duration `help:"After this long without activity, collect garbage and return freed memory to the OS; 0 turns it off." default:"2s" env:"P2PD_IDLE_TRIM"`
}

// minIdleTrim is the shortest --idle-trim: the trimmer looks for quiet four
// times per period, and more often than every 25ms is no use.
const minIdleTrim = 100 * time.Millisecond

// validate checks the flags.
func (f MemoryFlags) validate() error {
	if f.IdleTrim != 0 && f.IdleTrim < minIdleTrim {
		return fmt.Errorf("--idle-trim must be 0 (off) or at least %s, got %s", minIdleTrim, f.IdleTrim)
	}
	return nil
}

// apply sets the collector target for an idle relay, and returns the
// tuner that moves it with the load; the caller runs it.
func (f MemoryFlags) apply(log *slog.Logger) *gcTuner {
	t := newGCTuner(f.GCPercent, log)
	debug.SetGCPercent(t.light)
	return t
}

// lightGCPercent is the collector target of a relay with CPU to spare:
// Go's default.
const lightGCPercent = 100

// The tuner's thresholds: the share of its cores the process used over a
// tunePeriod.
const (
	busyAbove  = 0.7 // more: the target is --gc-percent
	lightBelow = 0.5 // less: lightGCPercent
	tunePeriod = 500 * time.Millisecond
)

// gcTuner moves the collector target with the load. A higher target (the
// default --gc-percent, 400) lets the heap grow further between
// collections: fewer collections, less CPU per message, more memory. What
// collections cost is about the same for every message at any rate, while
// what the rest costs is not: at a device fleet's pace (each device a
// message now and then) every message has wakeups and system calls of its
// own, and collections at Go's default target add a few percent to it; a
// relay at full load handles messages in batches, for a fraction of that,
// and the same collections take a third of its throughput. So the target
// is high only while the relay is busy, and memory is spared the rest of
// the time: with 2,000 devices at one ack a second, RSS 110 MiB against
// 159 MiB.
type gcTuner struct {
	busy, light int
	procs       int
	cpu         func() time.Duration // CPU time this process used so far
	set         func(int) int        // debug.SetGCPercent
	log         *slog.Logger
}

func newGCTuner(busy int, log *slog.Logger) *gcTuner {
	light := min(busy, lightGCPercent) // -1, off, stays off
	return &gcTuner{
		busy:  busy,
		light: light,
		procs: runtime.GOMAXPROCS(0),
		cpu:   processCPU,
		set:   debug.SetGCPercent,
		log:   log,
	}
}

// processCPU returns the CPU time the process used so far, user and
// system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// run checks the load every period until ctx ends. The target it starts
// from is t.light, as apply sets it.
func (t *gcTuner) run(ctx context.Context, period time.Duration) {
	if t.busy == t.light {
		return
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	last, lastCPU, current := time.Now(), t.cpu(), t.light
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			// The time is read with the CPU time, not taken from the
			// tick, which a busy process may handle late.
			now, cpu := time.Now(), t.cpu()
			used := float64(cpu-lastCPU) / float64(now.Sub(last)) / float64(t.procs)
			last, lastCPU = now, cpu
			next := current
			switch {
			case used >= busyAbove:
				next = t.busy
			case used <= lightBelow:
				next = t.light
			}
			if next != current {
				t.set(next)
				t.log.Debug("collector target", "gc_percent", next, "cpu_used", used)
				current = next
			}
		}
	}
}

// trimAfter is how much must have been allocated since the last trim for
// another to be worth its collection.
const trimAfter = 4 << 20

// trimmer returns memory to the OS once the relay has been quiet for a
// while after allocating: connecting devices and relaying leave garbage
// that an idle process would otherwise keep resident until its next
// collection, which might not come for minutes.
type trimmer struct {
	quiet    time.Duration
	activity func() uint64 // changes whenever the relay does something
	allocs   func() uint64 // bytes allocated since the process started
	trim     func()        // collects and returns freed memory
	log      *slog.Logger
}

func newTrimmer(quiet time.Duration, activity func() uint64, log *slog.Logger) *trimmer {
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	return &trimmer{
		quiet:    quiet,
		activity: activity,
		allocs: func() uint64 {
			metrics.Read(sample)
			return sample[0].Value.Uint64()
		},
		trim: debug.FreeOSMemory,
		log:  log,
	}
}

// run checks every quiet/4 until ctx ends.
func (t *trimmer) run(ctx context.Context) {
	tick := time.NewTicker(t.quiet / 4)
	defer tick.Stop()
	last, quietSince, trimmedAt := t.activity(), time.Now(), t.allocs()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if a := t.activity(); a != last {
				last, quietSince = a, now
				continue
			}
			if now.Sub(quietSince) < t.quiet {
				continue
			}
			if n := t.allocs(); n-trimmedAt >= trimAfter {
				start := time.Now()
				t.trim()
				t.log.Debug("returned idle memory to the OS", "allocated_since_last", n-trimmedAt, "took", time.Since(start))
				trimmedAt = t.allocs()
			}
		}
	}
}

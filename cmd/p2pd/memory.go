package main

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// MemoryFlags tune the Go runtime's memory use.
type MemoryFlags struct {
	GCPercent int           `help:"Go garbage collector target (GOGC): higher trades memory under load for less CPU per message." default:"400" env:"P2PD_GC_PERCENT"`
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

// apply sets the collector target.
func (f MemoryFlags) apply() {
	debug.SetGCPercent(f.GCPercent)
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

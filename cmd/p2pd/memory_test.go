package main

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestTrimmerWaitsForQuietAfterAllocating(t *testing.T) {
	var activity, allocated atomic.Uint64
	trims := make(chan struct{}, 10)
	tr := &trimmer{
		quiet:    40 * time.Millisecond,
		activity: activity.Load,
		allocs:   allocated.Load,
		trim:     func() { trims <- struct{}{} },
		log:      slog.New(slog.DiscardHandler),
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go tr.run(ctx)

	// Busy: activity keeps changing, no trim however much is allocated.
	busyUntil := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(busyUntil) {
		activity.Add(1)
		allocated.Add(trimAfter)
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case <-trims:
		t.Fatal("trimmed while busy")
	default:
	}
	// Quiet after allocating: one trim.
	select {
	case <-trims:
	case <-time.After(2 * time.Second):
		t.Fatal("no trim once quiet")
	}
	// Still quiet, nothing allocated since: no second trim.
	select {
	case <-trims:
		t.Fatal("trimmed again with nothing allocated")
	case <-time.After(200 * time.Millisecond):
	}
}

func TestGCTunerFollowsTheLoad(t *testing.T) {
	// The fake process uses share of its core, by the clock.
	var mu sync.Mutex
	var used time.Duration
	since, share := time.Now(), 0.0
	cpu := func() time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return used + time.Duration(share*float64(time.Since(since)))
	}
	setShare := func(s float64) {
		mu.Lock()
		defer mu.Unlock()
		used += time.Duration(share * float64(time.Since(since)))
		since, share = time.Now(), s
	}
	sets := make(chan int, 100)
	tu := &gcTuner{
		busy:  400,
		light: 100,
		procs: 1,
		cpu:   cpu,
		set:   func(p int) int { sets <- p; return 0 },
		log:   slog.New(slog.DiscardHandler),
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const period = 20 * time.Millisecond
	go tu.run(ctx, period)
	for _, step := range []struct {
		share float64
		want  int
	}{{1, 400}, {0.1, 100}, {0.9, 400}} {
		setShare(step.share)
		select {
		case p := <-sets:
			if p != step.want {
				t.Fatalf("%.0f%% of the core used: target %d, want %d", step.share*100, p, step.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%.0f%% of the core used: no target %d", step.share*100, step.want)
		}
	}
	// Between the thresholds, the target stays.
	setShare(0.6)
	select {
	case p := <-sets:
		t.Fatalf("target moved to %d at 60%% of the core", p)
	case <-time.After(10 * period):
	}
}

func TestGCTunerKeepsALowerTarget(t *testing.T) {
	for _, tc := range []struct{ flag, light int }{{400, 100}, {100, 100}, {50, 50}, {-1, -1}} {
		if got := newGCTuner(tc.flag, slog.New(slog.DiscardHandler)).light; got != tc.light {
			t.Errorf("--gc-percent %d: light target %d, want %d", tc.flag, got, tc.light)
		}
	}
}

package main

import (
	"context"
	"log/slog"
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

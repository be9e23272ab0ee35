package server_test

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/p2prelay/p2prelay/internal/testkit"
	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server"
)

// TestChurn connects devices in pairs, has them exchange with and without
// acks, drops them (half of the pairs with one side still waiting on an
// ack) and reconnects them, round after round. At the end no device is left
// connected or paired, and the relay's goroutines and heap are back near
// where they started.
func TestChurn(t *testing.T) {
	pairs, rounds := 300, 3
	if testing.Short() {
		pairs, rounds = 50, 2
	}
	r := start(t, server.Config{Rate: server.Unlimited, PairRate: server.Unlimited, MaxPendingAcks: server.Unlimited})
	settle := func() (int, uint64) {
		var ms runtime.MemStats
		for i := 0; i < 3; i++ {
			runtime.GC()
		}
		runtime.ReadMemStats(&ms)
		return runtime.NumGoroutine(), ms.HeapAlloc
	}
	// Warm up the relay and the client library once, so the baseline holds
	// their lazily built state.
	warm(t, r)
	baseG, baseHeap := settle()

	for round := 0; round < rounds; round++ {
		var wg sync.WaitGroup
		errs := make(chan error, pairs)
		busy := make(chan struct{}, 32) // pairs churning at once
		for p := 0; p < pairs; p++ {
			wg.Add(1)
			busy <- struct{}{}
			go func() {
				defer func() { <-busy; wg.Done() }()
				if err := churnPair(t, r, fmt.Sprintf("r%d-a%d", round, p), fmt.Sprintf("r%d-b%d", round, p), p%2 == 0); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return len(r.Relay.DeviceIDs()) == 0 })
		checkConsistent(t, r.Relay)
		if ps := r.Relay.Pairs(); len(ps) != 0 {
			t.Fatalf("round %d left pairs %v", round, ps)
		}
	}

	deadline := time.Now().Add(10 * time.Second)
	var g int
	var heap uint64
	for {
		g, heap = settle()
		if g <= baseG+10 && heap <= baseHeap+8<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after churn: %d goroutines (baseline %d), heap %d KiB (baseline %d KiB)", g, baseG, heap>>10, baseHeap>>10)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("%d pairs x %d rounds: goroutines %d -> %d, heap %d KiB -> %d KiB", pairs, rounds, baseG, g, baseHeap>>10, heap>>10)
}

func warm(t *testing.T, r *testkit.Relay) {
	t.Helper()
	if err := churnPair(t, r, "warm-a", "warm-b", true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(r.Relay.DeviceIDs()) == 0 })
}

// churnPair pairs two fresh devices, exchanges a few events, then drops
// them; with dropMidAck the target drops while an ack is still owed.
func churnPair(t *testing.T, r *testkit.Relay, a, b string, dropMidAck bool) error {
	da, err := testkit.Connect(t, r.URL, testkit.DialOptions{Query: map[string][]string{"clientId": {a}}})
	if err != nil {
		return fmt.Errorf("dial %s: %w", a, err)
	}
	db, err := testkit.Connect(t, r.URL, testkit.DialOptions{Query: map[string][]string{"deviceId": {b}}})
	if err != nil {
		da.Close()
		return fmt.Errorf("dial %s: %w", b, err)
	}
	defer da.Close()
	defer db.Close()
	res := make(chan []any, 1)
	go func() {
		v, _ := da.TryRequest(protocol.EventRegister, b)
		res <- v
	}()
	if _, ok := db.Await(protocol.EventRegister, testkit.Wait); !ok {
		return fmt.Errorf("%s not asked to pair", b)
	}
	if err := db.Socket.Emit(protocol.EventRegisterSuccess); err != nil {
		return err
	}
	if v := <-res; len(v) != 1 || v[0] != true {
		return fmt.Errorf("%s-%s pairing answered %v", a, b, v)
	}
	for i := 0; i < 3; i++ {
		_ = da.Socket.Emit(protocol.EventEmit, emitTo(b, "tick", i))
		if _, ok := db.Await("tick", testkit.Wait); !ok {
			return fmt.Errorf("%s lost tick %d", b, i)
		}
	}
	go func() {
		v, _ := da.TryRequest(protocol.EventEmitAck, map[string]any{"targetClientId": b, "event": "q"})
		res <- v
	}()
	q, ok := db.Await("q", testkit.Wait)
	if !ok {
		return fmt.Errorf("%s lost q", b)
	}
	if dropMidAck {
		db.Close()
		if v := <-res; protocol.ParseAckError(v) == nil {
			return fmt.Errorf("ack owed by a dropped device answered %v", v)
		}
		return nil
	}
	q.Ack("ok")
	if v := <-res; len(v) != 1 || v[0] != "ok" {
		return fmt.Errorf("ack answered %v", v)
	}
	return nil
}

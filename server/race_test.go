package server_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/p2prelay/p2prelay/internal/testkit"
	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server"
)

// checkConsistent fails unless every pair is agreed on by both sides and no
// device is left in a handshake.
func checkConsistent(t *testing.T, r *server.Relay) {
	t.Helper()
	devs := map[string]server.DeviceInfo{}
	for _, d := range r.Devices() {
		devs[d.ID] = d
	}
	for _, d := range devs {
		if d.Pairing != "" {
			t.Errorf("device %s still in a handshake with %s", d.ID, d.Pairing)
		}
		if d.Peer == "" {
			continue
		}
		if p, ok := devs[d.Peer]; !ok || p.Peer != d.ID {
			t.Errorf("device %s has peer %s, whose peer is %q", d.ID, d.Peer, p.Peer)
		}
	}
	for _, p := range r.Pairs() {
		if devs[p.A].Peer != p.B || devs[p.B].Peer != p.A {
			t.Errorf("pair %s-%s not agreed on: %q, %q", p.A, p.B, devs[p.A].Peer, devs[p.B].Peer)
		}
	}
}

func TestManyAskOneTarget(t *testing.T) {
	r := start(t, server.Config{})
	target := testkit.Dial(t, r.URL, "T")
	const n = 10
	srcs := make([]*testkit.Device, n)
	for i := range srcs {
		srcs[i] = testkit.Dial(t, r.URL, fmt.Sprintf("S%d", i))
	}
	// The target accepts whatever it is asked.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			ev, ok := target.Await(protocol.EventRegister, 50*time.Millisecond)
			if ok {
				ev.Ack(true)
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	var wg sync.WaitGroup
	results := make([]bool, n)
	for i := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := srcs[i].TryRequest(protocol.EventRegister, "T")
			results[i] = err == nil && len(v) == 1 && v[0] == true
		}()
	}
	wg.Wait()
	won := 0
	for i, ok := range results {
		if ok {
			won++
			continue
		}
		if e := srcs[i].ServerError(); e.Code != protocol.CodeBusy {
			t.Errorf("loser S%d told %v, want BUSY", i, e)
		}
	}
	if won != 1 {
		t.Fatalf("%d sources paired with T, want exactly 1", won)
	}
	checkConsistent(t, r.Relay)
}

func TestBothAskEachOtherAtOnce(t *testing.T) {
	// Neither side answers the other's request: they pair because each
	// asked for the other, long before the pairing timeout.
	r := start(t, server.Config{PairTimeout: 30 * time.Second})
	for i := 0; i < 5; i++ {
		a := testkit.Dial(t, r.URL, fmt.Sprintf("A%d", i))
		b := testkit.Dial(t, r.URL, fmt.Sprintf("B%d", i))
		var wg sync.WaitGroup
		res := make([][]any, 2)
		for j, pair := range [][2]any{{a, fmt.Sprintf("B%d", i)}, {b, fmt.Sprintf("A%d", i)}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[j], _ = pair[0].(*testkit.Device).TryRequest(protocol.EventRegister, pair[1])
			}()
		}
		wg.Wait()
		for j := range res {
			if len(res[j]) != 1 || res[j][0] != true {
				t.Fatalf("round %d: side %d answered %v", i, j, res[j])
			}
		}
		// A late "yes" to the crossed request does not undo the pair.
		for _, d := range []*testkit.Device{a, b} {
			if ev, ok := d.Await(protocol.EventRegister, 50*time.Millisecond); ok {
				ev.Ack(true)
			}
		}
		a.NoEvent(protocol.EventDisconnect, 50*time.Millisecond)
		b.NoEvent(protocol.EventDisconnect, 10*time.Millisecond)
		checkConsistent(t, r.Relay)
		if len(r.Relay.Pairs()) != i+1 {
			t.Fatalf("pairs %v", r.Relay.Pairs())
		}
	}
}

func TestDropsDuringHandshakes(t *testing.T) {
	r := start(t, server.Config{PairTimeout: 2 * time.Second})
	const n = 8
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		src := testkit.Dial(t, r.URL, fmt.Sprintf("S%d", i))
		dst := testkit.Dial(t, r.URL, fmt.Sprintf("D%d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := make(chan []any, 1)
			go func() {
				v, _ := src.TryRequest(protocol.EventRegister, fmt.Sprintf("D%d", i))
				res <- v
			}()
			ask, ok := dst.Await(protocol.EventRegister, testkit.Wait)
			if !ok {
				t.Errorf("D%d not asked", i)
				return
			}
			// Half accept and drop at once, half drop the source instead.
			if i%2 == 0 {
				ask.Ack(true)
				dst.Close()
			} else {
				src.Close()
				ask.Ack(true)
			}
			<-res
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(testkit.Wait)
	for {
		// Every pair that formed ended with its dropped side.
		if len(r.Relay.Pairs()) == 0 && len(r.Relay.DeviceIDs()) == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("left: pairs %v devices %v", r.Relay.Pairs(), r.Relay.DeviceIDs())
		}
		time.Sleep(10 * time.Millisecond)
	}
	checkConsistent(t, r.Relay)
}

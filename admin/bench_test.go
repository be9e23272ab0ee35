package admin

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2prelay/p2prelay/admin/adminapi"
	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server"
)

// nullConn is a device that drops what it is sent and answers acks at
// once, so that the relay core's work is all a benchmark measures.
type nullConn struct{}

func (nullConn) Emit(string, protocol.Args) {}
func (nullConn) EmitWithAck(_ string, _ protocol.Args, ack func(protocol.Args)) {
	ack(protocol.NewArgs(true))
}
func (nullConn) Disconnect()              {}
func (nullConn) Close()                   {}
func (nullConn) Transport() string        { return "websocket" }
func (nullConn) Alive(time.Duration) bool { return true }

// discardSink is a subscriber that takes everything in at once, counting.
type discardSink struct{ nDeltas, nTraffic, nDetails atomic.Int64 }

func (k *discardSink) snapshot(context.Context, *adminapi.Snapshot) error { return nil }
func (k *discardSink) deltas(_ context.Context, ds []adminapi.Delta) error {
	k.nDeltas.Add(int64(len(ds)))
	return nil
}
func (k *discardSink) detail(context.Context, *adminapi.DeviceDetail) error {
	k.nDetails.Add(1)
	return nil
}
func (k *discardSink) traffic(_ context.Context, b *adminapi.TrafficBatch) error {
	k.nTraffic.Add(int64(len(b.Traffic)))
	return nil
}

// fleet is a relay core with its hub and n devices in pairs: d00000 with
// d00001, and so on.
func fleet(b *testing.B, n int) (*server.Relay, *Hub, []*server.Session) {
	b.Helper()
	hub, err := New(Config{Token: testToken})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(hub.Close)
	r, err := server.New(server.Config{Rate: server.Unlimited, MaxDevices: server.Unlimited, Observer: hub})
	if err != nil {
		b.Fatal(err)
	}
	hub.Start(r)
	sessions := make([]*server.Session, n)
	for i := range sessions {
		id := fmt.Sprintf("d%05d", i)
		s, err := r.Join(server.ConnInfo{DeviceID: id, ConnID: id, Gen: protocol.Gen2, Address: "127.0.0.1:1", EngineIO: 4}, nullConn{})
		if err != nil {
			b.Fatal(err)
		}
		sessions[i] = s
		if i%2 == 1 {
			ok := false
			r.Handle(sessions[i-1], protocol.EventRegister, protocol.NewArgs(fmt.Sprintf("d%05d", i)), func(v protocol.Args) { ok = v.FirstIsTrue() })
			if !ok {
				b.Fatalf("d%05d did not pair", i-1)
			}
		}
	}
	return r, hub, sessions
}

// BenchmarkAckThroughputWithDashboard measures the relay core's ack round
// trips (P2P_EMIT_ACKNOWLEDGE, answered at once by the peer), in parallel
// on every pair but the first, with 10,000 devices connected and the first
// device sending 1,000 messages a second: "no-dashboard" with the hub and
// no subscriber, as p2pd runs when no one looks; "dashboard" with one
// subscriber taking the stream in (the once-a-second counters read every
// device) and watching the busy device (its detail once a second, its
// traffic at the relay's bound). Compare their ns/op: the dashboard's cost
// to the relay is the difference. Run it for several seconds, so that the
// once-a-second work counts:
//
//	go test -run '^$' -bench AckThroughputWithDashboard -benchtime 10s ./admin
func BenchmarkAckThroughputWithDashboard(b *testing.B) {
	for _, dashboard := range []bool{false, true} {
		name := "no-dashboard"
		if dashboard {
			name = "dashboard"
		}
		b.Run(name, func(b *testing.B) {
			const devices = 10000
			r, hub, sessions := fleet(b, devices)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var sink discardSink
			if dashboard {
				sub := hub.subscribe()
				defer hub.unsubscribe(sub)
				go func() { _ = hub.stream(ctx, sub, &sink) }()
				if err := hub.watch(sub, "d00000"); err != nil {
					b.Fatal(err)
				}
			}
			// The busy device: 1,000 messages a second to its peer, caught up
			// in bursts whenever the busy cores let its goroutine run late.
			busy := protocol.NewArgs(map[string]any{"targetClientId": "d00001", "event": "tick", "args": []any{"hello", 42.0}})
			var sent atomic.Int64
			go func() {
				t := time.NewTicker(time.Millisecond)
				defer t.Stop()
				start := time.Now()
				for {
					select {
					case <-ctx.Done():
						return
					case now := <-t.C:
						for owed := int64(now.Sub(start)/time.Millisecond) - sent.Load(); owed > 0; owed-- {
							r.Handle(sessions[0], protocol.EventEmit, busy, nil)
							sent.Add(1)
						}
					}
				}
			}()
			began := time.Now()
			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				// Each goroutine drives pairs of its own, never the busy one.
				pair := 1 + int(next.Add(1))%(devices/2-1)
				src, dst := sessions[2*pair], fmt.Sprintf("d%05d", 2*pair+1)
				payload := protocol.NewArgs(map[string]any{"targetClientId": dst, "event": "q", "args": []any{1.0}})
				ack := func(protocol.Args) {}
				for pb.Next() {
					r.Handle(src, protocol.EventEmitAck, payload, ack)
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(sent.Load())/time.Since(began).Seconds(), "busy-msgs/s")
			if dashboard {
				b.ReportMetric(float64(sink.nTraffic.Load())/b.Elapsed().Seconds(), "traffic/s")
				if sink.nDetails.Load() == 0 && b.Elapsed() > 2*time.Second {
					b.Errorf("no detail of the watched device in %s", b.Elapsed())
				}
			}
		})
	}
}

// BenchmarkDashboardCost measures what a dashboard costs the relay's ack
// throughput, on one relay core with 10,000 devices and the first device
// sending 1,000 messages a second, in alternating windows: without a
// subscriber, then with one taking the stream in (the once-a-second
// counters read every device) and watching the busy device (its detail
// once a second, its traffic at the relay's bound), then without again,
// and so on; in each, a worker per core does ack round trips on pairs of
// its own. Each window with the dashboard is compared with the mean of the
// two around it, which takes out the drifts in speed of a shared machine.
// Throughput is counted per second of the process's CPU time (acks/cpu-s),
// so that other processes taking the CPU do not count: on a relay that
// has the CPU to itself, the drop in acks a second is the drop in acks per
// CPU second. It reports the median of the costs, and the medians of the
// windows:
//
//	go test -run '^$' -bench DashboardCost -benchtime 12x ./admin
func BenchmarkDashboardCost(b *testing.B) {
	const devices = 10000
	const windowLen = 4 * time.Second
	r, hub, sessions := fleet(b, devices)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	busy := protocol.NewArgs(map[string]any{"targetClientId": "d00001", "event": "tick", "args": []any{"hello", 42.0}})
	go func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		start, sent := time.Now(), int64(0)
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				for ; sent < int64(now.Sub(start)/time.Millisecond); sent++ {
					r.Handle(sessions[0], protocol.EventEmit, busy, nil)
				}
			}
		}
	}()
	// window runs the workers for windowLen and returns their acks per
	// second of the process's CPU time.
	window := func() float64 {
		var done atomic.Int64
		stop := make(chan struct{})
		workers := 2 * runtime.GOMAXPROCS(0)
		finished := make(chan struct{}, workers)
		for w := range workers {
			go func() {
				defer func() { finished <- struct{}{} }()
				pair := 1 + w
				src, dst := sessions[2*pair], fmt.Sprintf("d%05d", 2*pair+1)
				payload := protocol.NewArgs(map[string]any{"targetClientId": dst, "event": "q", "args": []any{1.0}})
				ack := func(protocol.Args) { done.Add(1) }
				for {
					select {
					case <-stop:
						return
					default:
					}
					for range 64 {
						r.Handle(src, protocol.EventEmitAck, payload, ack)
					}
				}
			}()
		}
		cpu := processCPU()
		time.Sleep(windowLen) // the measured window, not a synchronisation
		close(stop)
		for range workers {
			<-finished
		}
		return float64(done.Load()) / (processCPU() - cpu).Seconds()
	}
	off := []float64{window()}
	var on, costs []float64
	var sink discardSink
	for b.Loop() {
		sctx, scancel := context.WithCancel(ctx)
		sub := hub.subscribe()
		ended := make(chan struct{})
		go func() { _ = hub.stream(sctx, sub, &sink); close(ended) }()
		if err := hub.watch(sub, "d00000"); err != nil {
			b.Fatal(err)
		}
		on = append(on, window())
		scancel()
		<-ended
		hub.unsubscribe(sub)
		off = append(off, window())
		n := len(on)
		costs = append(costs, 100*(1-on[n-1]/((off[n-1]+off[n])/2)))
	}
	b.ReportMetric(median(off), "acks/cpu-s-alone")
	b.ReportMetric(median(on), "acks/cpu-s-dashboard")
	b.ReportMetric(median(costs), "cost-%")
	b.ReportMetric(float64(sink.nTraffic.Load())/(float64(len(on))*windowLen.Seconds()), "traffic/s")
	b.Logf("cost of each window with the dashboard, %%: %.1f", costs)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// BenchmarkDashboardWork measures the relay-side work a dashboard adds, with
// 10,000 devices in 5,000 pairs: "sample" is the once-a-second counters with
// a subscriber (the pairs' counts read, the changes found), "sample-devices"
// the reading of every device's counters that goes with it every 5 s at
// this size, "refresh" the once-a-second detail of a watched device, "tap"
// one message of a watched device, rate-bounded and handed to its watcher,
// and "tap-unwatched" the same message of a device no one watches. A
// second of a dashboard watching a device under 1,000 messages a second is
// one sample, a fifth of a sample-devices, one refresh and 1,000 taps.
func BenchmarkDashboardWork(b *testing.B) {
	r, hub, sessions := fleet(b, 10000)
	sub := hub.subscribe()
	defer hub.unsubscribe(sub)
	hub.resync(sub)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // the subscriber keeps up
		for {
			select {
			case <-sub.ch:
			case <-sub.watches.traffic:
			case <-ctx.Done():
				return
			}
		}
	}()
	var smp sampler
	hub.sampleStats(&smp)
	b.Run("sample", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuPerOp(b)()
		for b.Loop() {
			smp.devicesAt = time.Now() // not due
			hub.sampleStats(&smp)
		}
	})
	b.Run("sample-devices", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuPerOp(b)()
		for b.Loop() {
			smp.devicesAt = time.Time{} // due
			hub.sampleStats(&smp)
		}
	})
	if err := hub.watch(sub, "d00000"); err != nil {
		b.Fatal(err)
	}
	hub.refreshWatches(r)
	b.Run("refresh", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuPerOp(b)()
		for b.Loop() {
			hub.refreshWatches(r)
		}
	})
	busy := protocol.NewArgs(map[string]any{"targetClientId": "d00001", "event": "tick", "args": []any{"hello", 42.0}})
	b.Run("tap", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuPerOp(b)()
		for b.Loop() {
			r.Handle(sessions[0], protocol.EventEmit, busy, nil)
		}
	})
	other := protocol.NewArgs(map[string]any{"targetClientId": "d00003", "event": "tick", "args": []any{"hello", 42.0}})
	b.Run("tap-unwatched", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuPerOp(b)()
		for b.Loop() {
			r.Handle(sessions[2], protocol.EventEmit, other, nil)
		}
	})
}

// cpuPerOp starts counting the process's CPU time; the function it returns
// reports it per operation (cpu-ns/op), which other processes on a shared
// machine do not inflate as they do the wall time.
func cpuPerOp(b *testing.B) func() {
	start := processCPU()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

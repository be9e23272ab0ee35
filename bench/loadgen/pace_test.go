package loadgen

import (
	"math"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestSchedule runs a schedule on a simulated clock: every pair fires
// about once a period, never before it is due, never twice at once, and
// always in the order the sends fall due.
func TestSchedule(t *testing.T) {
	const (
		pairs  = 500
		period = time.Second
		span   = 20 * time.Second
	)
	for _, jitter := range []float64{0, 0.1, 0.5} {
		s := newSchedule(pairs, period, jitter, 1)
		count := make([]int, pairs)
		last := make([]time.Duration, pairs)
		for i := range last {
			last[i] = -1
		}
		var prev time.Duration
		fired := 0
		// Uneven steps, as the pacer wakes: the timer's granularity, or
		// later when it is busy.
		for now := time.Duration(0); now < span; now += time.Duration(1+fired%7) * time.Millisecond {
			s.fire(now, func(i int, due time.Duration) {
				if due > now {
					t.Fatalf("jitter %v: pair %d fired at %v, due %v", jitter, i, now, due)
				}
				if due < prev {
					t.Fatalf("jitter %v: pair %d due %v fired after one due %v", jitter, i, due, prev)
				}
				if last[i] >= 0 {
					gap := due - last[i]
					lo, hi := time.Duration(float64(period)*(1-jitter)), time.Duration(float64(period)*(1+jitter))
					if gap < lo-1 || gap > hi+1 {
						t.Fatalf("jitter %v: pair %d fired %v after its last, outside [%v, %v]", jitter, i, gap, lo, hi)
					}
				}
				prev, last[i] = due, due
				count[i]++
				fired++
			})
		}
		want := float64(pairs) * span.Seconds() / period.Seconds()
		if math.Abs(float64(fired)-want) > 0.02*want {
			t.Errorf("jitter %v: %d sends in %v, want about %.0f", jitter, fired, span, want)
		}
		// Bounds that hold whatever the draws: the first send within the
		// first period, every interval within the jitter.
		lo := int(float64(span-period) / (float64(period) * (1 + jitter)))
		hi := int(float64(span)/(float64(period)*(1-jitter))) + 1
		for i, n := range count {
			if n < lo || n > hi {
				t.Errorf("jitter %v: pair %d fired %d times in %v", jitter, i, n, span)
			}
		}
	}
}

// TestScheduleSpread: the first sends spread over the first period, and
// the same seed gives the same schedule.
func TestScheduleSpread(t *testing.T) {
	a, b := newSchedule(1000, time.Second, 0.1, 7), newSchedule(1000, time.Second, 0.1, 7)
	var buckets [10]int
	var dues []time.Duration
	next := a.fire(time.Second-1, func(_ int, due time.Duration) {
		buckets[due*10/time.Second]++
		dues = append(dues, due)
	})
	for i, n := range buckets {
		if n < 60 || n > 140 {
			t.Errorf("%d of 1,000 first sends in the %d tenth of the period", n, i)
		}
	}
	if next < time.Second-1 {
		t.Errorf("next send due %v, before now", next)
	}
	i := 0
	b.fire(time.Second-1, func(_ int, due time.Duration) {
		if due != dues[i] {
			t.Fatalf("send %d due %v, %v with the same seed", i, due, dues[i])
		}
		i++
	})
	if empty := newSchedule(0, time.Second, 0, 1); empty.fire(time.Hour, func(int, time.Duration) { t.Error("an empty schedule fired") }) < time.Hour {
		t.Error("an empty schedule has a send due")
	}
}

// TestSendTimes: acks that come back out of order each find their own
// send time, and a message waits while an older one holds its slot.
func TestSendTimes(t *testing.T) {
	t0 := time.Unix(0, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	st := make(sendTimes, 2)
	st.put(1, at(0))
	st.put(2, at(1))
	if rtt, ok := st.take(2, at(5)); !ok || rtt != 4*time.Millisecond {
		t.Errorf("ack 2: %v %v", rtt, ok)
	}
	if st.free(3) {
		t.Error("message 3 may take the slot message 1 still holds")
	}
	if !st.free(4) {
		t.Error("message 4's slot, freed by ack 2, is not free")
	}
	if rtt, ok := st.take(1, at(10)); !ok || rtt != 10*time.Millisecond {
		t.Errorf("ack 1: %v %v", rtt, ok)
	}
	for _, seq := range []int64{1, 3, 0, -1} {
		if _, ok := st.take(seq, at(11)); ok {
			t.Errorf("ack %d, not outstanding, took a slot", seq)
		}
	}
}

func TestPaceFigures(t *testing.T) {
	pc := &pacer{lags: make([]time.Duration, 100)}
	for i := range pc.lags {
		pc.lags[i] = time.Duration(100-i) * 10 * time.Microsecond // 10 µs .. 1 ms
	}
	m := map[string]float64{MetricRate: 999, MetricP99: 300}
	if notes := paceFigures(m, pc, 1000); len(notes) != 0 {
		t.Errorf("notes for a punctual generator and a relay that kept up: %q", notes)
	}
	if m[MetricOffered] != 1000 || m[MetricLagP50] != 500 || m[MetricLagP99] != 990 || m[MetricLagMax] != 1000 {
		t.Errorf("figures %v", m)
	}
	pc.lags[0], pc.lags[1] = 5*time.Millisecond, 6*time.Millisecond
	pc.skipped = 3
	m = map[string]float64{MetricRate: 900, MetricP99: 40000}
	notes := paceFigures(m, pc, 1000)
	if len(notes) != 2 || !strings.HasPrefix(notes[0], "generator late: it fired 1% of its sends more than 5ms") ||
		!strings.HasPrefix(notes[1], "the relay fell behind: 900 acks/s completed of 1000/s offered; 3 sends skipped") {
		t.Errorf("notes %q", notes)
	}
	// As late, against round trips more than ten times longer: no matter.
	m = map[string]float64{MetricRate: 1000, MetricP99: 60000}
	if notes := paceFigures(m, pc, 1000); len(notes) != 1 || strings.HasPrefix(notes[0], "generator late") {
		t.Errorf("notes %q", notes)
	}
}

func TestSources(t *testing.T) {
	for _, tc := range []struct{ devices, ports, want int }{
		{10000, 28232, 1}, {14116, 28232, 1}, {14117, 28232, 2}, {100000, 28232, 8}, {5, 1, 5},
	} {
		if got := sourcesNeeded(tc.devices, tc.ports); got != tc.want {
			t.Errorf("sourcesNeeded(%d, %d) = %d, want %d", tc.devices, tc.ports, got, tc.want)
		}
	}
	addrs, err := loopbackAddrs(258)
	if err != nil {
		t.Fatal(err)
	}
	if addrs[0].String() != "127.0.0.1" || addrs[1].String() != "127.0.0.2" || addrs[257].String() != "127.0.1.2" {
		t.Errorf("addresses %v ... %v", addrs[:2], addrs[257])
	}
	if got, err := LoopbackSources("http://127.0.0.1:9000", 10); err != nil || got != nil {
		t.Errorf("10 devices: sources %v, %v; want the system's choice", got, err)
	}
	if _, err := LoopbackSources("http://192.0.2.1:9000", 1<<20); err == nil {
		t.Error("more sources than one address has ports for, on an address that is not loopback")
	}
}

// TestDialFromSource: connections come from each source in turn.
func TestDialFromSource(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := &Dialer{Sources: []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")}}
	for _, want := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.2"} {
		c, err := d.dialFromSource(t.Context(), "tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if got := s.RemoteAddr().(*net.TCPAddr).IP.String(); got != want {
			t.Errorf("connection from %s, want %s", got, want)
		}
		c.Close()
		s.Close()
	}
}

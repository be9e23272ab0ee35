package loadgen

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// A paced scenario's figures are flagged when the generator's lag (how
// late it fires sends against their schedule, p99) exceeds both LagLimit,
// twice the granularity of Go's timers on Linux, which sleep in whole
// milliseconds, so that only a busy generator exceeds it, and LagShare of
// the ack round trip p99: round trips are timed from the actual send, so
// a late send does not lengthen them, but a generator that late is also
// late to read the acks, by as much.
const (
	LagLimit = 2 * time.Millisecond
	LagShare = 0.1
)

// GeneratorLate reports whether a paced scenario's metrics show the
// generator late enough to matter.
func GeneratorLate(m map[string]float64) bool {
	lag := m[MetricLagP99]
	return lag > micros(LagLimit) && lag > LagShare*m[MetricP99]
}

// schedule says when each of n pairs sends next: every period on average,
// each interval drawn uniformly within ±jitter of it, the first at a
// random phase within the first period, so that the sends spread evenly
// over time. It is a min-heap of due times, offsets from the schedule's
// start; one goroutine owns it.
type schedule struct {
	period time.Duration
	jitter float64
	rng    *rand.Rand
	heap   []slot
}

// slot is one pair's next send.
type slot struct {
	due  time.Duration
	pair int
}

// newSchedule returns the schedule of n pairs; the same seed gives the
// same schedule, so that both relays meet the same load.
func newSchedule(n int, period time.Duration, jitter float64, seed uint64) *schedule {
	s := &schedule{period: period, jitter: jitter, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	s.heap = make([]slot, n)
	for i := range s.heap {
		s.heap[i] = slot{due: time.Duration(s.rng.Int64N(int64(period))), pair: i}
	}
	slices.SortFunc(s.heap, func(a, b slot) int { return cmp.Compare(a.due, b.due) }) // a sorted slice is a heap
	return s
}

// interval is the time from one send of a pair to its next.
func (s *schedule) interval() time.Duration {
	if s.jitter == 0 {
		return s.period
	}
	return time.Duration(float64(s.period) * (1 + s.jitter*(2*s.rng.Float64()-1)))
}

// fire calls fn for every pair due at or before now, earliest first, with
// the time it was due, reschedules it one interval after that (not after
// now: a late send does not delay the ones after it), and returns when the
// next pair is due.
func (s *schedule) fire(now time.Duration, fn func(pair int, due time.Duration)) time.Duration {
	if len(s.heap) == 0 {
		return time.Duration(1<<63 - 1)
	}
	for s.heap[0].due <= now {
		fn(s.heap[0].pair, s.heap[0].due)
		s.heap[0].due += s.interval()
		s.down(0)
	}
	return s.heap[0].due
}

// down moves the slot at i down the heap to its place.
func (s *schedule) down(i int) {
	h := s.heap
	for {
		least := i
		for _, c := range [2]int{2*i + 1, 2*i + 2} {
			if c < len(h) && h[c].due < h[least].due {
				least = c
			}
		}
		if least == i {
			return
		}
		h[i], h[least] = h[least], h[i]
		i = least
	}
}

// pacer sends every pair's messages on a schedule, from one goroutine: no
// timer per device, and one wake-up for every send that falls due within
// the timer's granularity. Stop it with stop, after which its figures
// may be read.
type pacer struct {
	done chan struct{}
	quit chan struct{}
	once sync.Once

	// Figures of the measured window, written by the pacer's goroutine.
	lags    []time.Duration // how late each send was fired
	skipped int64           // sends skipped: the pair had its most acks outstanding
}

// startPacer starts sending on s: send(i) sends pair i's next message and
// reports whether it did; measuring says whether the window is open, and
// window is how long it will be, to size the record of lags.
func startPacer(s *schedule, window time.Duration, measuring func() bool, send func(i int) bool) *pacer {
	p := &pacer{done: make(chan struct{}), quit: make(chan struct{})}
	expect := float64(len(s.heap)) * window.Seconds() / s.period.Seconds()
	p.lags = make([]time.Duration, 0, int(min(expect*1.1, 1<<24)))
	go func() {
		defer close(p.done)
		start := time.Now()
		t := time.NewTimer(0)
		defer t.Stop()
		fn := func(i int, due time.Duration) {
			lag := time.Since(start) - due
			sent := send(i)
			if measuring() {
				p.lags = append(p.lags, lag)
				if !sent {
					p.skipped++
				}
			}
		}
		for {
			next := s.fire(time.Since(start), fn)
			t.Reset(next - time.Since(start))
			select {
			case <-t.C:
			case <-p.quit:
				return
			}
		}
	}()
	return p
}

// stop stops the pacer and waits for its goroutine to end.
func (p *pacer) stop() {
	p.once.Do(func() { close(p.quit) })
	<-p.done
}

package server

import (
	"sync/atomic"

	"github.com/p2prelay/p2prelay/protocol"
)

// stats are the relay's running counters; every field is updated atomically.
type stats struct {
	connects    atomic.Uint64
	disconnects atomic.Uint64
	messages    atomic.Uint64 // events relayed
	acks        atomic.Uint64 // acks piped back
	paired      atomic.Uint64 // pairing requests that formed a pair
	refusals    map[protocol.Code]*atomic.Uint64
	pairFails   map[protocol.Code]*atomic.Uint64
}

func newStats() *stats {
	s := &stats{
		refusals:  make(map[protocol.Code]*atomic.Uint64, len(protocol.Codes)),
		pairFails: make(map[protocol.Code]*atomic.Uint64, len(protocol.Codes)),
	}
	for _, c := range protocol.Codes {
		s.refusals[c] = new(atomic.Uint64)
		s.pairFails[c] = new(atomic.Uint64)
	}
	return s
}

// refusal counts one refused request by its code; "" and codes that are
// not refusals count nothing. The maps are never written after newStats,
// so reading them needs no lock.
func (s *stats) refusal(c protocol.Code) {
	if n, ok := s.refusals[c]; ok {
		n.Add(1)
	}
}

// pairOutcome counts one settled pairing request: "" when it formed a pair,
// else the refusal's code.
func (s *stats) pairOutcome(c protocol.Code) {
	if c == "" {
		s.paired.Add(1)
		return
	}
	if n, ok := s.pairFails[c]; ok {
		n.Add(1)
	}
}

// Stats is a snapshot of the relay's counters since it started.
type Stats struct {
	Devices     int                      `json:"devices"`
	Pairs       int                      `json:"pairs"`
	Connects    uint64                   `json:"connects"`
	Disconnects uint64                   `json:"disconnects"`
	Messages    uint64                   `json:"messages"`
	Acks        uint64                   `json:"acks"`
	Paired      uint64                   `json:"paired"`
	Refusals    map[protocol.Code]uint64 `json:"refusals"`    // refused requests by code
	PairFailed  map[protocol.Code]uint64 `json:"pair_failed"` // failed pairing requests by code
}

// Stats returns a snapshot of the relay's counters. Codes with a zero count
// are left out of the maps.
func (r *Relay) Stats() Stats {
	st := Stats{
		Connects:    r.stats.connects.Load(),
		Disconnects: r.stats.disconnects.Load(),
		Messages:    r.stats.messages.Load(),
		Acks:        r.stats.acks.Load(),
		Paired:      r.stats.paired.Load(),
		Refusals:    make(map[protocol.Code]uint64),
		PairFailed:  make(map[protocol.Code]uint64),
	}
	for c, n := range r.stats.refusals {
		if v := n.Load(); v > 0 {
			st.Refusals[c] = v
		}
	}
	for c, n := range r.stats.pairFails {
		if v := n.Load(); v > 0 {
			st.PairFailed[c] = v
		}
	}
	st.Devices = r.store.Len()
	st.Pairs = len(r.store.Pairs())
	return st
}

// Activity returns a number that changes whenever a device connects or
// disconnects or a message or ack is relayed: cheap to poll, for callers
// that act when the relay is quiet.
func (r *Relay) Activity() uint64 {
	return r.stats.connects.Load() + r.stats.disconnects.Load() + r.stats.messages.Load() + r.stats.acks.Load()
}

package server

import (
	"sync"
	"time"

	"github.com/p2prelay/p2prelay/protocol"
)

// memoryStore is the in-memory Store: one mutex over every record, so each
// operation sees and leaves a consistent state.
type memoryStore struct {
	now func() time.Time

	mu      sync.RWMutex // guards devices, pairs, shakes, nextID
	devices map[string]*record
	pairs   map[string]*Pair // both ids of a pair map to the same *Pair
	shakes  map[uint64]Handshake
	nextID  uint64
}

type record struct {
	dev Device
	out uint64 // handshake this device started, 0 when none
	in  uint64 // handshake in which this device is asked, 0 when none
}

// NewMemoryStore returns an empty in-memory Store. now may be nil (time.Now).
func NewMemoryStore(now func() time.Time) Store {
	if now == nil {
		now = time.Now
	}
	return &memoryStore{
		now:     now,
		devices: make(map[string]*record),
		pairs:   make(map[string]*Pair),
		shakes:  make(map[uint64]Handshake),
	}
}

func (s *memoryStore) Add(d Device, takeover bool) (Claim, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.devices[d.ID]
	var c Claim
	switch {
	case ok && old.dev.Away:
		prev := old.dev.Node
		d.Peer, d.Pairing, d.Away = old.dev.Peer, "", false
		old.dev = d
		return Claim{Resumed: true, Peer: d.Peer, PrevNode: prev}, nil
	case ok && !takeover:
		return Claim{}, protocol.Errorf(protocol.CodeIDInUse, "device id %q is already connected", d.ID)
	case ok:
		c.Replaced = s.dropLocked(old)
	}
	d.Peer, d.Pairing, d.Away = "", "", false
	s.devices[d.ID] = &record{dev: d}
	return c, nil
}

func (s *memoryStore) Suspend(id, connID string) (*Teardown, bool, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.devices[id]
	if !ok || r.dev.ConnID != connID || r.dev.Away {
		return nil, false, false
	}
	if r.dev.Peer == "" {
		return s.dropLocked(r), false, true
	}
	td := &Teardown{Device: r.dev}
	s.endShakesLocked(r, td)
	r.dev.Away = true
	return td, true, true
}

func (s *memoryStore) Remove(id, connID string) (*Teardown, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.devices[id]
	if !ok || r.dev.ConnID != connID {
		return nil, false
	}
	return s.dropLocked(r), true
}

// dropLocked removes r with its pair and handshakes. s.mu must be held.
func (s *memoryStore) dropLocked(r *record) *Teardown {
	td := &Teardown{Device: r.dev}
	if p, ok := s.pairs[r.dev.ID]; ok {
		pc := *p
		td.Pair = &pc
		s.unpairLocked(p)
	}
	s.endShakesLocked(r, td)
	delete(s.devices, r.dev.ID)
	return td
}

// endShakesLocked ends the handshakes r takes part in, adding them to td.
// s.mu must be held.
func (s *memoryStore) endShakesLocked(r *record, td *Teardown) {
	for _, h := range [...]uint64{r.out, r.in} {
		if hs, ok := s.shakes[h]; ok {
			td.Handshakes = append(td.Handshakes, hs)
			s.cancelLocked(hs)
		}
	}
}

func (s *memoryStore) Get(id string) (Device, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.devices[id]
	if !ok {
		return Device{}, false
	}
	return r.dev, true
}

func (s *memoryStore) Devices() []Device {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Device, 0, len(s.devices))
	for _, r := range s.devices {
		out = append(out, r.dev)
	}
	return out
}

func (s *memoryStore) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.devices)
}

func (s *memoryStore) Pairs() []Pair {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Pair, 0, len(s.pairs)/2)
	for id, p := range s.pairs {
		if p.A == id {
			out = append(out, *p)
		}
	}
	return out
}

func (s *memoryStore) Peer(id string) (string, bool) {
	s.mu.RLock()
	p, ok := s.pairs[id]
	s.mu.RUnlock()
	if !ok {
		return "", false
	}
	return p.Other(id), true
}

func (s *memoryStore) BeginPair(src, dst string) (BeginResult, error) {
	if src == dst {
		return BeginResult{}, protocol.Errorf(protocol.CodeSelf, "cannot pair with yourself")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rs, ok := s.devices[src]
	if !ok {
		return BeginResult{}, protocol.Errorf(protocol.CodeOffline, "device %q is not connected", src)
	}
	rd, ok := s.devices[dst]
	if !ok || rd.dev.Away && rd.dev.Peer == "" {
		// An away device that lost its peer waits only for its end.
		return BeginResult{}, protocol.Errorf(protocol.CodeOffline, "device %q is offline", dst)
	}
	switch {
	case rs.dev.Peer == dst:
		return BeginResult{Already: true}, nil
	case rs.dev.Peer != "":
		return BeginResult{}, protocol.Errorf(protocol.CodeBusy, "you are paired with %q: unregister first", rs.dev.Peer)
	case rd.dev.Peer != "":
		return BeginResult{}, protocol.Errorf(protocol.CodeBusy, "device %q is paired with another device", dst)
	}
	// Both sides asking each other at once: the earlier request stands for
	// the later one's consent, so they pair now.
	if hs, ok := s.shakes[rd.out]; ok && hs.Dst == src {
		s.cancelLocked(hs)
		p := s.pairLocked(hs.Src, hs.Dst)
		return BeginResult{Pair: p, Crossed: &hs}, nil
	}
	switch {
	case rs.out != 0:
		return BeginResult{}, protocol.Errorf(protocol.CodeBusy, "your request to pair with %q is still under way", s.shakes[rs.out].Dst)
	case rs.in != 0:
		return BeginResult{}, protocol.Errorf(protocol.CodeBusy, "you are being asked to pair by %q: answer first", s.shakes[rs.in].Src)
	case rd.out != 0 || rd.in != 0:
		return BeginResult{}, protocol.Errorf(protocol.CodeBusy, "device %q is pairing with another device", dst)
	}
	s.nextID++
	hs := Handshake{ID: s.nextID, Src: src, Dst: dst}
	s.shakes[hs.ID] = hs
	rs.out, rd.in = hs.ID, hs.ID
	rs.dev.Pairing, rd.dev.Pairing = dst, src
	return BeginResult{Handshake: &hs}, nil
}

func (s *memoryStore) EndPair(h uint64, accept bool) (Outcome, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hs, ok := s.shakes[h]
	if !ok {
		return Outcome{}, ErrStale
	}
	s.cancelLocked(hs)
	out := Outcome{Handshake: hs}
	if accept {
		out.Pair = s.pairLocked(hs.Src, hs.Dst)
	}
	return out, nil
}

func (s *memoryStore) Incoming(id string) (Handshake, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.devices[id]
	if !ok || r.in == 0 {
		return Handshake{}, false
	}
	hs, ok := s.shakes[r.in]
	return hs, ok
}

func (s *memoryStore) Unpair(id string) (Pair, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pairs[id]
	if !ok {
		return Pair{}, false
	}
	pc := *p
	s.unpairLocked(p)
	return pc, true
}

// pairLocked pairs a (the asker) with b; both must be free of pairs and
// handshakes. s.mu must be held.
func (s *memoryStore) pairLocked(a, b string) *Pair {
	p := &Pair{A: a, B: b, Since: s.now()}
	s.pairs[a], s.pairs[b] = p, p
	s.devices[a].dev.Peer = b
	s.devices[b].dev.Peer = a
	pc := *p
	return &pc
}

func (s *memoryStore) unpairLocked(p *Pair) {
	for _, id := range [...]string{p.A, p.B} {
		if s.pairs[id] == p {
			delete(s.pairs, id)
		}
		if r, ok := s.devices[id]; ok && r.dev.Peer == p.Other(id) {
			r.dev.Peer = ""
		}
	}
}

// cancelLocked forgets a handshake on both sides. s.mu must be held.
func (s *memoryStore) cancelLocked(hs Handshake) {
	delete(s.shakes, hs.ID)
	if r, ok := s.devices[hs.Src]; ok && r.out == hs.ID {
		r.out, r.dev.Pairing = 0, ""
	}
	if r, ok := s.devices[hs.Dst]; ok && r.in == hs.ID {
		r.in, r.dev.Pairing = 0, ""
	}
}

package adminapi

import (
	"maps"
	"slices"
	"sort"
)

// State is a subscriber's copy of the relay's state: a snapshot with the
// deltas that followed it applied in sequence order. It is not safe for
// concurrent use.
//
// Applying a delta is idempotent with respect to the snapshot: the relay
// publishes an event after it changed its state, so a snapshot taken after
// sequence number S may already reflect some later changes; each delta sets
// the state of what it names (a device, a pair) rather than adding to it, so
// applying it again leaves the same result, and the state ends equal to the
// relay's once every delta is applied.
type State struct {
	Seq     uint64
	Stats   Stats
	Devices map[string]*Device
	Pairs   map[string]*Pair // keyed by the asking side, A
	// PairRates are the pairs' messages per second as the last stats delta
	// gave them, keyed by A; a pair without one relayed nothing in that
	// interval, or was not yet paired when it began.
	PairRates map[string]float64
	// DeviceRates are the devices' messages per second as the last stats
	// delta that sampled the devices gave them; a device without one
	// relayed nothing in that interval, or was not yet connected when it
	// began.
	DeviceRates map[string]float64
	// Node is the cluster node serving the admin side, "" for a relay
	// alone; Nodes are the cluster's live nodes as the snapshot or the
	// last stats delta that read them gave them, sorted by id.
	Node   string
	Nodes  []Node
	pairOf map[string]string // device id -> the A of its pair
}

// NewState returns a State holding snap.
func NewState(snap *Snapshot) *State {
	s := &State{}
	s.Reset(snap)
	return s
}

// Reset replaces the whole state with snap.
func (s *State) Reset(snap *Snapshot) {
	s.Seq = snap.Seq
	s.Stats = snap.Stats
	s.Node, s.Nodes = snap.Node, slices.Clone(snap.Nodes)
	s.Devices = make(map[string]*Device, len(snap.Devices))
	s.Pairs = make(map[string]*Pair, len(snap.Pairs))
	s.PairRates = nil
	s.DeviceRates = nil
	s.pairOf = make(map[string]string, 2*len(snap.Pairs))
	for i := range snap.Devices {
		d := snap.Devices[i]
		s.Devices[d.ID] = &d
	}
	for i := range snap.Pairs {
		p := snap.Pairs[i]
		s.setPair(&p)
	}
	// A snapshot is read from the relay in two steps (devices, then pairs),
	// so make the peers agree with the pairs.
	for _, d := range s.Devices {
		s.syncPeer(d)
	}
}

// Apply applies one delta. Deltas must come in sequence order, each once,
// as an adminclient.Subscription delivers them (it checks their numbers;
// Apply does not).
func (s *State) Apply(d Delta) {
	s.Seq = d.Seq
	switch d.Kind {
	case KindDeviceConnected:
		if d.Device == nil {
			return
		}
		dev := *d.Device
		s.Devices[dev.ID] = &dev
		delete(s.DeviceRates, dev.ID) // a new connection's rate starts afresh
		s.syncPeer(&dev)
	case KindDeviceDisconnected:
		if a, ok := s.pairOf[d.ID]; ok {
			s.dropPair(a)
		}
		delete(s.Devices, d.ID)
	case KindDeviceUpdated:
		if d.Device == nil {
			return
		}
		if dev, ok := s.Devices[d.ID]; ok {
			dev.Transport = d.Device.Transport
		}
	case KindDeviceAway:
		if dev, ok := s.Devices[d.ID]; ok {
			dev.Away = true
		}
	case KindDeviceResumed:
		// Back on a new connection, in the same pair.
		if d.Device == nil {
			return
		}
		if dev, ok := s.Devices[d.ID]; ok {
			dev.Away = false
			dev.Node = d.Device.Node // it may have come back on another node
			dev.Address, dev.Transport = d.Device.Address, d.Device.Transport
			dev.Generation, dev.EngineIO = d.Device.Generation, d.Device.EngineIO
		}
	case KindPairRequested:
		for _, id := range [...]string{d.ID, d.Peer} {
			if dev, ok := s.Devices[id]; ok && dev.Peer == "" {
				dev.Pairing = other(d, id)
				dev.Available = false
			}
		}
	case KindPairCreated:
		// A new pair's rate starts afresh, even where an earlier pair had
		// the same asking side.
		delete(s.PairRates, d.ID)
		s.pairCreated(d)
	case KindPairEnded:
		if p, ok := s.Pairs[d.ID]; ok && p.B == d.Peer {
			s.dropPair(d.ID)
		}
	case KindPairRefused:
		// The handshake between the two ended.
		for _, id := range [...]string{d.ID, d.Peer} {
			if dev, ok := s.Devices[id]; ok && (dev.Pairing == d.ID || dev.Pairing == d.Peer) {
				dev.Pairing = ""
				dev.Available = dev.Peer == ""
			}
		}
	case KindStats:
		if d.Stats != nil {
			s.Stats = *d.Stats
		}
		for a, n := range d.PairMessages {
			if p, ok := s.Pairs[a]; ok {
				p.Messages = n
			}
		}
		s.PairRates = maps.Clone(d.PairRates)
		for id, n := range d.DeviceMessages {
			if dev, ok := s.Devices[id]; ok {
				dev.Messages = n
			}
		}
		for id, n := range d.DeviceRefusals {
			if dev, ok := s.Devices[id]; ok {
				dev.Refusals = n
			}
		}
		if d.DevicesSampled {
			s.DeviceRates = maps.Clone(d.DeviceRates)
		}
		if d.Nodes != nil {
			s.Nodes = slices.Clone(d.Nodes)
		}
	}
}

func (s *State) pairCreated(d Delta) {
	if s.Devices[d.ID] == nil || s.Devices[d.Peer] == nil {
		// A pair of devices already gone: its end is in the stream too.
		return
	}
	if p, ok := s.Pairs[d.ID]; ok && p.B == d.Peer {
		return // already reflected by the snapshot
	}
	for _, id := range [...]string{d.ID, d.Peer} {
		if a, ok := s.pairOf[id]; ok {
			s.dropPair(a)
		}
	}
	s.setPair(&Pair{A: d.ID, B: d.Peer, Since: d.Time})
	for _, id := range [...]string{d.ID, d.Peer} {
		dev := s.Devices[id]
		dev.Pairing = ""
		s.syncPeer(dev)
	}
}

func (s *State) setPair(p *Pair) {
	s.Pairs[p.A] = p
	s.pairOf[p.A] = p.A
	s.pairOf[p.B] = p.A
}

func (s *State) dropPair(a string) {
	p, ok := s.Pairs[a]
	if !ok {
		return
	}
	delete(s.Pairs, a)
	for _, id := range [...]string{p.A, p.B} {
		if s.pairOf[id] == a {
			delete(s.pairOf, id)
		}
		if dev, ok := s.Devices[id]; ok {
			s.syncPeer(dev)
		}
	}
}

// syncPeer sets d's peer and availability from the pairs.
func (s *State) syncPeer(d *Device) {
	d.Peer = ""
	if a, ok := s.pairOf[d.ID]; ok {
		if p := s.Pairs[a]; p != nil {
			d.Peer = p.B
			if p.B == d.ID {
				d.Peer = p.A
			}
		}
	}
	d.Available = d.Peer == "" && d.Pairing == ""
}

// Snapshot returns the state as a Snapshot, devices sorted by id and pairs
// by their asking side.
func (s *State) Snapshot() *Snapshot {
	out := &Snapshot{Seq: s.Seq, Stats: s.Stats, Time: s.Stats.Time, Node: s.Node, Nodes: slices.Clone(s.Nodes),
		Devices: make([]Device, 0, len(s.Devices)), Pairs: make([]Pair, 0, len(s.Pairs))}
	for _, d := range s.Devices {
		out.Devices = append(out.Devices, *d)
	}
	for _, p := range s.Pairs {
		out.Pairs = append(out.Pairs, *p)
	}
	sort.Slice(out.Devices, func(i, j int) bool { return out.Devices[i].ID < out.Devices[j].ID })
	sort.Slice(out.Pairs, func(i, j int) bool { return out.Pairs[i].A < out.Pairs[j].A })
	return out
}

// Clustered reports whether the relay is a node of a cluster.
func (s *State) Clustered() bool { return s.Node != "" }

// PairOf returns the pair device id is in.
func (s *State) PairOf(id string) (*Pair, bool) {
	a, ok := s.pairOf[id]
	if !ok {
		return nil, false
	}
	p, ok := s.Pairs[a]
	return p, ok
}

// other returns the side of a pair delta that is not id.
func other(d Delta, id string) string {
	if d.ID == id {
		return d.Peer
	}
	return d.ID
}

package adminapi

import "testing"

func TestStateFollowsHandshakesAndUpgrades(t *testing.T) {
	s := NewState(&Snapshot{Seq: 10, Devices: []Device{
		{ID: "A", Available: true, Transport: "polling"},
		{ID: "B", Available: true, Transport: "websocket"},
	}})
	apply := func(d Delta) {
		d.Seq = s.Seq + 1
		s.Apply(d)
	}
	apply(Delta{Kind: KindDeviceUpdated, ID: "A", Device: &Device{ID: "A", Transport: "websocket"}})
	if got := s.Devices["A"].Transport; got != "websocket" {
		t.Fatalf("transport %q after device_updated", got)
	}
	apply(Delta{Kind: KindPairRequested, ID: "A", Peer: "B"})
	for id, other := range map[string]string{"A": "B", "B": "A"} {
		if d := s.Devices[id]; d.Available || d.Pairing != other {
			t.Fatalf("%s during the handshake: %+v", id, d)
		}
	}
	apply(Delta{Kind: KindPairRefused, ID: "A", Peer: "B", Code: "REFUSED"})
	for _, id := range []string{"A", "B"} {
		if d := s.Devices[id]; !d.Available || d.Pairing != "" {
			t.Fatalf("%s after the refusal: %+v", id, d)
		}
	}
	apply(Delta{Kind: KindPairRequested, ID: "B", Peer: "A"})
	apply(Delta{Kind: KindPairCreated, ID: "B", Peer: "A"})
	if d := s.Devices["A"]; d.Available || d.Pairing != "" || d.Peer != "B" {
		t.Fatalf("A after pairing: %+v", d)
	}
}

func TestStatePairRates(t *testing.T) {
	s := NewState(&Snapshot{Seq: 1, Devices: []Device{{ID: "A"}, {ID: "B"}, {ID: "C"}},
		Pairs: []Pair{{A: "A", B: "B"}}})
	rates := map[string]float64{"A": 2.5}
	s.Apply(Delta{Seq: 2, Kind: KindStats, Stats: &Stats{}, PairMessages: map[string]uint64{"A": 5}, PairRates: rates})
	if s.PairRates["A"] != 2.5 || s.Pairs["A"].Messages != 5 {
		t.Fatalf("after stats: rates %v, pair %+v", s.PairRates, s.Pairs["A"])
	}
	// A pairs anew: the old pair's rate is not the new one's, and the
	// delta's map is left as it was.
	s.Apply(Delta{Seq: 3, Kind: KindPairEnded, ID: "A", Peer: "B"})
	s.Apply(Delta{Seq: 4, Kind: KindPairCreated, ID: "A", Peer: "C"})
	if _, ok := s.PairRates["A"]; ok || rates["A"] != 2.5 {
		t.Fatalf("after A paired again: rates %v, the delta's %v", s.PairRates, rates)
	}
	s.Apply(Delta{Seq: 5, Kind: KindStats, Stats: &Stats{}, PairRates: map[string]float64{"A": 1}})
	s.Reset(&Snapshot{Seq: 9})
	if s.PairRates != nil {
		t.Fatalf("a snapshot kept the rates %v", s.PairRates)
	}
}

func TestStateFollowsADeviceAwayAndBack(t *testing.T) {
	s := NewState(&Snapshot{Seq: 1, Devices: []Device{{ID: "A", Peer: "B"}, {ID: "B", Peer: "A", Transport: "polling", Address: "x"}},
		Pairs: []Pair{{A: "A", B: "B"}}})
	s.Apply(Delta{Seq: 2, Kind: KindDeviceAway, ID: "B", Peer: "A", Reason: "ping timeout"})
	if d := s.Devices["B"]; !d.Away || d.Peer != "A" || len(s.Pairs) != 1 {
		t.Fatalf("B away: %+v, pairs %v", d, s.Pairs)
	}
	s.Apply(Delta{Seq: 3, Kind: KindDeviceResumed, ID: "B", Peer: "A", Device: &Device{ID: "B", Transport: "websocket", Address: "y", Generation: "gen2", EngineIO: 4}})
	if d := s.Devices["B"]; d.Away || d.Peer != "A" || d.Transport != "websocket" || d.Address != "y" || len(s.Pairs) != 1 {
		t.Fatalf("B back: %+v, pairs %v", d, s.Pairs)
	}
	if got := (Delta{Kind: KindDeviceAway, ID: "B", Peer: "A", Reason: "ping timeout"}).Summary(); got != "B away: it stopped answering heartbeats; its pair with A waits for it" {
		t.Errorf("summary %q", got)
	}
}

func TestStateFollowsTheCluster(t *testing.T) {
	s := NewState(&Snapshot{Seq: 1, Node: "n1", Nodes: []Node{{ID: "n1", Self: true}, {ID: "n2"}},
		Devices: []Device{{ID: "A", Peer: "B", Node: "n1"}, {ID: "B", Peer: "A", Node: "n2"}}, Pairs: []Pair{{A: "A", B: "B"}}})
	if !s.Clustered() || len(s.Nodes) != 2 {
		t.Fatalf("state of a cluster: node %q, nodes %+v", s.Node, s.Nodes)
	}
	// B drops off n2 and comes back on n1.
	s.Apply(Delta{Seq: 2, Kind: KindDeviceAway, ID: "B", Peer: "A"})
	s.Apply(Delta{Seq: 3, Kind: KindDeviceResumed, ID: "B", Peer: "A", Device: &Device{ID: "B", Node: "n1"}})
	if d := s.Devices["B"]; d.Node != "n1" || d.Away {
		t.Fatalf("B back on n1: %+v", d)
	}
	// Stats without nodes (the reading failed) keep them; with, replace them.
	s.Apply(Delta{Seq: 4, Kind: KindStats, Stats: &Stats{}})
	if len(s.Nodes) != 2 {
		t.Fatalf("nodes after stats without any: %+v", s.Nodes)
	}
	s.Apply(Delta{Seq: 5, Kind: KindStats, Stats: &Stats{}, Nodes: []Node{{ID: "n1", Self: true}}})
	if len(s.Nodes) != 1 || !s.Snapshot().Clustered() || len(s.Snapshot().Nodes) != 1 {
		t.Fatalf("nodes after n2 left: %+v", s.Nodes)
	}
	if got := (Delta{Kind: KindDeviceConnected, ID: "C", Device: &Device{ID: "C", Node: "n2", Address: "x", Transport: "websocket", Generation: "gen2", EngineIO: 4}}).Summary(); got != "C connected on n2 from x (websocket, gen2, EIO 4)" {
		t.Errorf("summary %q", got)
	}
	if NewState(&Snapshot{}).Clustered() {
		t.Error("a relay alone's state is clustered")
	}
}

package adminapi

import "testing"

func TestStateFollowsHandshakesAndUpgrades(t *testing.T) {
	s := NewState(&Snapshot{Seq: 10, Devices: []Device{
		{ID: "A", Available: true, Transport: "polling"},
		{ID: "B", Available: true, Transport: "websocket"},
	}})
	apply := func(d Delta) {
		t.Helper()
		d.Seq = s.Seq + 1
		if err := s.Apply(d); err != nil {
			t.Fatal(err)
		}
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

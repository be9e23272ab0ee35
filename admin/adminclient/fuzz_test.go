package adminclient

import (
	"testing"
	"time"

	"github.com/p2prelay/p2prelay/admin/adminapi"
)

// FuzzDeltas feeds arbitrary "deltas" payloads, as the client decodes them
// from the wire, to a State: nothing may panic, and the state must stay
// consistent (every pair's sides exist and name each other as peers).
func FuzzDeltas(f *testing.F) {
	for _, seed := range []string{
		`[{"seq":1,"kind":"device_connected","id":"a","device":{"id":"a"}},{"seq":2,"kind":"device_connected","id":"b","device":{"id":"b"}},{"seq":3,"kind":"pair_created","id":"a","peer":"b"}]`,
		`[{"seq":1,"kind":"pair_created","id":"a","peer":"a"},{"seq":2,"kind":"device_disconnected","id":"a"}]`,
		`[{"seq":1,"kind":"stats","stats":{"messages":3},"pair_messages":{"a":3}},{"seq":2,"kind":"pair_ended","id":"a","peer":"b"}]`,
		`[{"seq":1,"kind":"pair_refused","id":"c","peer":"a","code":"BUSY"},{"seq":9,"kind":"command"}]`,
		`[{"seq":1,"kind":"device_connected","id":"x"}]`,
		`{"seq":1}`, `[1, "two", null]`, `null`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ds, err := decodeDeltas(data)
		if err != nil {
			return
		}
		s := adminapi.NewState(&adminapi.Snapshot{Seq: 0, Devices: []adminapi.Device{{ID: "a"}, {ID: "b", Peer: "a"}}, Pairs: []adminapi.Pair{{A: "b", B: "a", Since: time.Unix(0, 0)}}})
		for i, d := range ds {
			d.Seq = uint64(i + 1) // the subscription only ever applies contiguous deltas
			s.Apply(d)
		}
		for a, p := range s.Pairs {
			da, db := s.Devices[p.A], s.Devices[p.B]
			if a != p.A || da == nil || db == nil {
				t.Fatalf("pair %+v keyed %q: sides %v %v", p, a, da, db)
			}
			if da.Peer != p.B || db.Peer != p.A || da.Available || db.Available {
				t.Fatalf("pair %+v: peers %q %q, available %v %v", p, da.Peer, db.Peer, da.Available, db.Available)
			}
		}
		for id, d := range s.Devices {
			if d.ID != id {
				t.Fatalf("device %+v keyed %q", d, id)
			}
			if _, paired := s.PairOf(id); paired != (d.Peer != "") {
				t.Fatalf("device %+v: paired %v", d, paired)
			}
		}
	})
}

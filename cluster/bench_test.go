package cluster

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/p2prelay/p2prelay/internal/redistest"
	"github.com/p2prelay/p2prelay/server"
)

// BenchmarkStore measures the Redis store on a local redis-server, beside
// the memory store for scale. "pair" is one pairing from nothing: two Adds,
// BeginPair and EndPair (four scripts); "get" and "peer" read one of 1000
// paired devices. The -parallel variants run on every P at once.
func BenchmarkStore(b *testing.B) {
	srv := redistest.Start(b)
	rdb := srv.Client(b)
	stores := []struct {
		name string
		new  func(b *testing.B) server.Store
	}{
		{"memory", func(*testing.B) server.Store { return server.NewMemoryStore(nil) }},
		{"redis", func(b *testing.B) server.Store {
			// The benchmark runs again with a larger b.N: start afresh.
			if err := rdb.FlushDB(context.Background()).Err(); err != nil {
				b.Fatal(err)
			}
			return NewStore(rdb, StoreOptions{Prefix: "bench"})
		}},
	}
	for _, st := range stores {
		b.Run(st.name+"/pair", func(b *testing.B) {
			s := st.new(b)
			for i := range b.N {
				benchPair(b, s, fmt.Sprint(i))
			}
		})
		b.Run(st.name+"/pair-parallel", func(b *testing.B) {
			s := st.new(b)
			var n atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					benchPair(b, s, fmt.Sprint(n.Add(1)))
				}
			})
		})
		for _, read := range []struct {
			name string
			f    func(s server.Store, id string) bool
		}{
			{"get", func(s server.Store, id string) bool { _, ok := s.Get(id); return ok }},
			{"peer", func(s server.Store, id string) bool { _, ok := s.Peer(id); return ok }},
		} {
			const devices = 1000
			prepare := func(b *testing.B) server.Store {
				s := st.new(b)
				for i := range devices / 2 {
					benchPair(b, s, fmt.Sprint(i))
				}
				b.ResetTimer()
				return s
			}
			b.Run(st.name+"/"+read.name, func(b *testing.B) {
				s := prepare(b)
				for i := range b.N {
					if !read.f(s, fmt.Sprintf("A%d", i%(devices/2))) {
						b.Fatal("not found")
					}
				}
			})
			b.Run(st.name+"/"+read.name+"-parallel", func(b *testing.B) {
				s := prepare(b)
				var n atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if !read.f(s, fmt.Sprintf("B%d", n.Add(1)%(devices/2))) {
							b.Error("not found")
							return
						}
					}
				})
			})
		}
	}
}

// benchPair adds A<n> and B<n> and pairs them.
func benchPair(b *testing.B, s server.Store, n string) {
	a, c := "A"+n, "B"+n
	for _, id := range []string{a, c} {
		d := server.Device{ID: id, ConnID: "c-" + id, Node: "n1", Gen: 2, Transport: "websocket", EngineIO: 4}
		if _, err := s.Add(d, false); err != nil {
			b.Error(err)
			return
		}
	}
	res, err := s.BeginPair(a, c)
	if err != nil || res.Handshake == nil {
		b.Errorf("BeginPair = %+v, %v", res, err)
		return
	}
	if out, err := s.EndPair(res.Handshake.ID, true); err != nil || out.Pair == nil {
		b.Errorf("EndPair = %+v, %v", out, err)
	}
}

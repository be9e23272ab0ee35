package cluster

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server"
)

// TestSameAsMemoryStore runs random operations on the memory store and the
// Redis store side by side and wants the same answer from both, to the
// error message, and the same state after each step.
func TestSameAsMemoryStore(t *testing.T) {
	const seeds, steps = 2, 600
	forEach(t, func(t *testing.T, rdb *redis.Client) {
		for seed := range uint64(seeds) {
			t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
				var at time.Time // the clock of both stores, set at each step
				now := func() time.Time { return at }
				w := &twin{
					t:   t,
					rnd: rand.New(rand.NewPCG(seed, 1)),
					mem: server.NewMemoryStore(now),
					red: NewStore(rdb, StoreOptions{Prefix: t.Name(), Now: now}),
				}
				base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
				for i := range steps {
					at = base.Add(time.Duration(i)*time.Millisecond + time.Duration(seed))
					w.step(i)
				}
				if w.red.Err() != nil {
					t.Fatalf("Err = %v", w.red.Err())
				}
			})
		}
	})
}

// twin is the memory store and the Redis store, driven alike.
type twin struct {
	t      *testing.T
	rnd    *rand.Rand
	mem    server.Store
	red    *Store
	conns  int    // connection ids handed out
	shakes uint64 // the highest handshake id seen
}

var twinIDs = []string{"A", "B", "C", "D", "E", "F"}

func (w *twin) id() string { return twinIDs[w.rnd.IntN(len(twinIDs))] }

// conn returns the connection that holds id, or now and then another.
func (w *twin) conn(id string) string {
	if d, ok := w.mem.Get(id); ok && w.rnd.IntN(5) > 0 {
		return d.ConnID
	}
	return fmt.Sprintf("c%d", w.rnd.IntN(w.conns+1))
}

func (w *twin) step(i int) {
	t := w.t
	var op string
	var mem, red any
	switch [...]int{0, 0, 2, 3, 4, 4, 4, 5, 5, 6}[w.rnd.IntN(10)] {
	case 0:
		w.conns++
		d := server.Device{
			ID: w.id(), ConnID: fmt.Sprintf("c%d", w.conns), Node: fmt.Sprintf("n%d", w.rnd.IntN(3)),
			Gen: protocol.Generation(1 + w.rnd.IntN(2)), Address: "10.0.0.1:1", Transport: "websocket", EngineIO: 4,
			ConnectedAt: time.Unix(1_700_000_000+int64(i), int64(w.rnd.IntN(1e9))).UTC(),
		}
		if w.rnd.IntN(2) == 0 {
			d.TokenExpires = d.ConnectedAt.Add(time.Hour)
		}
		takeover := w.rnd.IntN(3) == 0
		op = fmt.Sprintf("Add(%s %s %s, %v)", d.ID, d.ConnID, d.Node, takeover)
		mem, red = result(w.mem.Add(d, takeover)), result(w.red.Add(d, takeover))
	case 2:
		id := w.id()
		c := w.conn(id)
		op = fmt.Sprintf("Remove(%s, %s)", id, c)
		mem, red = result(w.mem.Remove(id, c)), result(w.red.Remove(id, c))
	case 3:
		id := w.id()
		c := w.conn(id)
		op = fmt.Sprintf("Suspend(%s, %s)", id, c)
		mem, red = result(w.mem.Suspend(id, c)), result(w.red.Suspend(id, c))
	case 4:
		src, dst := w.id(), w.id()
		op = fmt.Sprintf("BeginPair(%s, %s)", src, dst)
		mr, merr := w.mem.BeginPair(src, dst)
		if mr.Handshake != nil {
			w.shakes = max(w.shakes, mr.Handshake.ID)
		}
		mem, red = result(mr, merr), result(w.red.BeginPair(src, dst))
	case 5:
		h := w.shakes + 1 - min(w.shakes, w.rnd.Uint64N(4)) // mostly recent ones
		accept := w.rnd.IntN(3) > 0
		op = fmt.Sprintf("EndPair(%d, %v)", h, accept)
		mem, red = result(w.mem.EndPair(h, accept)), result(w.red.EndPair(h, accept))
	case 6:
		id := w.id()
		op = fmt.Sprintf("Unpair(%s)", id)
		mem, red = result(w.mem.Unpair(id)), result(w.red.Unpair(id))
	}
	if !reflect.DeepEqual(mem, red) {
		t.Fatalf("step %d: %s:\nmemory %#v\nredis  %#v", i, op, mem, red)
	}
	if ms, rs := state(w.mem), state(w.red); !reflect.DeepEqual(ms, rs) {
		t.Fatalf("step %d: after %s, the stores differ:\nmemory %#v\nredis  %#v", i, op, ms, rs)
	}
}

// result turns what a Store method returned into a value to compare:
// times in UTC without monotonic readings, errors as their text.
func result(vals ...any) []any {
	out := make([]any, len(vals))
	for i, v := range vals {
		switch v := v.(type) {
		case error:
			out[i] = fmt.Sprintf("%T %s %s", v, protocol.CodeOf(v), v)
			if errors.Is(v, server.ErrStale) {
				out[i] = "stale"
			}
		case server.Claim:
			v.Replaced = normTeardown(v.Replaced)
			out[i] = v
		case *server.Teardown:
			out[i] = normTeardown(v)
		case server.BeginResult:
			v.Pair = normPair(v.Pair)
			out[i] = v
		case server.Outcome:
			v.Pair = normPair(v.Pair)
			out[i] = v
		case server.Pair:
			out[i] = *normPair(&v)
		default:
			out[i] = v
		}
	}
	return out
}

func normDevice(d server.Device) server.Device {
	d.ConnectedAt, d.TokenExpires = d.ConnectedAt.UTC().Round(0), d.TokenExpires.UTC().Round(0)
	return d
}

func normPair(p *server.Pair) *server.Pair {
	if p == nil {
		return nil
	}
	c := *p
	c.Since = c.Since.UTC().Round(0)
	return &c
}

func normTeardown(td *server.Teardown) *server.Teardown {
	if td == nil {
		return nil
	}
	c := *td
	c.Device = normDevice(c.Device)
	c.Pair = normPair(c.Pair)
	return &c
}

// storeState is everything a Store answers about its state.
type storeState struct {
	Len      int
	Devices  []server.Device
	Pairs    []server.Pair
	Peers    map[string]string
	Incoming map[string]server.Handshake
}

func state(s server.Store) storeState {
	st := storeState{Len: s.Len(), Peers: map[string]string{}, Incoming: map[string]server.Handshake{}}
	for _, d := range s.Devices() {
		st.Devices = append(st.Devices, normDevice(d))
	}
	sort.Slice(st.Devices, func(i, j int) bool { return st.Devices[i].ID < st.Devices[j].ID })
	for _, p := range s.Pairs() {
		st.Pairs = append(st.Pairs, *normPair(&p))
	}
	sort.Slice(st.Pairs, func(i, j int) bool { return st.Pairs[i].A < st.Pairs[j].A })
	for _, id := range twinIDs {
		if p, ok := s.Peer(id); ok {
			st.Peers[id] = p
		}
		if h, ok := s.Incoming(id); ok {
			st.Incoming[id] = h
		}
		if d, ok := s.Get(id); ok && !reflect.DeepEqual(normDevice(d), findDevice(st.Devices, id)) {
			st.Peers[id+" Get"] = fmt.Sprintf("%+v", d) // differs from Devices: shows in the diff
		}
	}
	return st
}

func findDevice(ds []server.Device, id string) server.Device {
	for _, d := range ds {
		if d.ID == id {
			return d
		}
	}
	return server.Device{}
}

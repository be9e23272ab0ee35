package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/p2prelay/p2prelay/internal/redistest"
	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server"
)

func device(id, conn, node string) server.Device {
	return server.Device{ID: id, ConnID: conn, Node: node, Gen: protocol.Gen2, Transport: "websocket", EngineIO: 4}
}

func mustAdd(t *testing.T, s *Store, ds ...server.Device) {
	t.Helper()
	for _, d := range ds {
		if _, err := s.Add(d, false); err != nil {
			t.Fatalf("Add(%s): %v", d.ID, err)
		}
	}
}

func mustPair(t *testing.T, s *Store, a, b string) {
	t.Helper()
	res, err := s.BeginPair(a, b)
	if err != nil || res.Handshake == nil {
		t.Fatalf("BeginPair(%s, %s) = %+v, %v", a, b, res, err)
	}
	if out, err := s.EndPair(res.Handshake.ID, true); err != nil || out.Pair == nil {
		t.Fatalf("EndPair = %+v, %v", out, err)
	}
}

// keys returns the keys of the Redis that start with prefix, sorted.
func keys(t *testing.T, rdb *redis.Client, prefix string) []string {
	t.Helper()
	ks, err := rdb.Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatalf("KEYS: %v", err)
	}
	var out []string
	for _, k := range ks {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func TestPrefixesAreIsolated(t *testing.T) {
	forEach(t, func(t *testing.T, rdb *redis.Client) {
		one := NewStore(rdb, StoreOptions{Prefix: "one"})
		two := NewStore(rdb, StoreOptions{Prefix: "two"})
		for _, s := range []*Store{one, two} {
			mustAdd(t, s, device("A", "c-A", "n1"), device("B", "c-B", "n1"))
		}
		mustPair(t, one, "A", "B")
		if p, ok := two.Peer("A"); ok || len(two.Pairs()) != 0 {
			t.Fatalf("a pair under one shows under two: %q, %+v", p, two.Pairs())
		}
		if _, ok := two.Remove("A", "c-A"); !ok {
			t.Fatalf("Remove under two failed")
		}
		if one.Len() != 2 || two.Len() != 1 {
			t.Fatalf("Len: one %d, two %d; want 2, 1", one.Len(), two.Len())
		}
		if _, err := two.BeginPair("B", "A"); protocol.CodeOf(err) != protocol.CodeOffline {
			t.Fatalf("BeginPair under two with A removed there: %v", err)
		}
		if p, ok := one.Peer("B"); !ok || p != "A" {
			t.Fatalf("Peer(B) under one = %q, %v", p, ok)
		}
		// Every key is under its store's prefix, in one hash slot.
		all := keys(t, rdb, "")
		want := []string{
			"{one}:dev:A", "{one}:dev:B", "{one}:devs", "{one}:node:n1", "{one}:pairs", "{one}:shake_seq",
			"{two}:dev:B", "{two}:devs", "{two}:node:n1",
		}
		if fmt.Sprint(all) != fmt.Sprint(want) {
			t.Fatalf("keys %v\nwant %v", all, want)
		}
	})
}

func TestDevicesOn(t *testing.T) {
	forEach(t, func(t *testing.T, rdb *redis.Client) {
		s := NewStore(rdb, StoreOptions{Prefix: t.Name()})
		on := func(node string) string {
			t.Helper()
			ds, err := s.DevicesOn(node)
			if err != nil {
				t.Fatalf("DevicesOn(%s): %v", node, err)
			}
			var ids []string
			for _, d := range ds {
				if d.Node != node {
					t.Fatalf("DevicesOn(%s) returned %+v", node, d)
				}
				ids = append(ids, d.ID+"/"+d.ConnID)
			}
			sort.Strings(ids)
			return strings.Join(ids, " ")
		}
		want := func(node, ids string) {
			t.Helper()
			if got := on(node); got != ids {
				t.Fatalf("DevicesOn(%s) = %q, want %q", node, got, ids)
			}
		}
		mustAdd(t, s, device("A", "c-A", "n1"), device("B", "c-B", "n1"), device("C", "c-C", "n2"))
		want("n1", "A/c-A B/c-B")
		want("n2", "C/c-C")
		want("n3", "")

		// Away, a device stays on its node; back on another, it moves.
		mustPair(t, s, "A", "C")
		if _, kept, _ := s.Suspend("A", "c-A"); !kept {
			t.Fatalf("A not kept")
		}
		want("n1", "A/c-A B/c-B")
		if c, err := s.Add(device("A", "c-A2", "n2"), false); err != nil || !c.Resumed || c.PrevNode != "n1" {
			t.Fatalf("resume of A on n2 = %+v, %v", c, err)
		}
		want("n1", "B/c-B")
		want("n2", "A/c-A2 C/c-C")

		// Taken over from another node, it moves too.
		if c, err := s.Add(device("B", "c-B2", "n2"), true); err != nil || c.Replaced == nil || c.Replaced.Device.Node != "n1" {
			t.Fatalf("takeover of B on n2 = %+v, %v", c, err)
		}
		want("n1", "")
		want("n2", "A/c-A2 B/c-B2 C/c-C")

		// n2 is lost: the reaper removes what it held, with the pairs.
		ds, err := s.DevicesOn("n2")
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if _, ok := s.Remove(d.ID, d.ConnID); !ok {
				t.Fatalf("reaper's Remove(%s, %s) failed", d.ID, d.ConnID)
			}
		}
		if s.Len() != 0 || len(s.Pairs()) != 0 {
			t.Fatalf("left after the reaper: %+v, %+v", s.Devices(), s.Pairs())
		}
		// Nothing is left behind but the handshake counter.
		if ks := keys(t, rdb, s.root); fmt.Sprint(ks) != fmt.Sprint([]string{s.root + "shake_seq"}) {
			t.Fatalf("keys left: %v", ks)
		}
	})
}

// allCalls calls every Store method once and reports what each returned
// that a Store in good health would not have, and the errors it returned.
func allCalls(s *Store) (oddities []string, errs []error) {
	odd := func(cond bool, what string) {
		if cond {
			oddities = append(oddities, what)
		}
	}
	c, err := s.Add(device("X", "c-X", "n1"), false)
	odd(c.Replaced != nil || c.Resumed, "Add claimed")
	errs = append(errs, err)
	res, err := s.BeginPair("A", "B")
	odd(res != server.BeginResult{}, "BeginPair result")
	errs = append(errs, err)
	out, err := s.EndPair(1, true)
	odd(out.Pair != nil, "EndPair paired")
	errs = append(errs, err)
	ds, err := s.DevicesOn("n1")
	odd(ds != nil, "DevicesOn listed")
	errs = append(errs, err)
	td, ok := s.Remove("A", "c-A")
	odd(td != nil || ok, "Remove removed")
	td, kept, ok := s.Suspend("A", "c-A")
	odd(td != nil || kept || ok, "Suspend suspended")
	_, ok = s.Get("A")
	odd(ok, "Get found")
	odd(s.Devices() != nil, "Devices listed")
	odd(s.Len() != 0, "Len counted")
	odd(s.Pairs() != nil, "Pairs listed")
	_, ok = s.Peer("A")
	odd(ok, "Peer found")
	_, ok = s.Incoming("A")
	odd(ok, "Incoming found")
	_, ok = s.Unpair("A")
	odd(ok, "Unpair unpaired")
	return oddities, errs
}

// wantDown checks that every method fails cleanly with Redis down, each
// within limit, and that Err and OnError say so.
func wantDown(t *testing.T, s *Store, heard *atomic.Int32, limit time.Duration) {
	t.Helper()
	heard.Store(0)
	start := time.Now()
	oddities, errs := allCalls(s)
	took := time.Since(start)
	if len(oddities) > 0 {
		t.Errorf("with Redis down: %v", oddities)
	}
	for i, err := range errs {
		if !errors.Is(err, ErrRedis) {
			t.Errorf("error %d = %v, want one that wraps ErrRedis", i, err)
		}
	}
	if err := s.Err(); !errors.Is(err, ErrRedis) {
		t.Errorf("Err = %v, want one that wraps ErrRedis", err)
	}
	if n := heard.Load(); n != 13 {
		t.Errorf("OnError heard %d failures, want one per call, 13", n)
	}
	if took > 13*limit {
		t.Errorf("13 calls with Redis down took %s, over %s each", took, limit)
	}
	t.Logf("13 calls with Redis down took %s; Err: %v", took, s.Err())
}

// waitHealthy waits until s reaches Redis again: go-redis, having failed
// to dial, waits for a dial in the background to succeed before it tries
// again.
func waitHealthy(t *testing.T, s *Store) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(redistest.Wait)
	for s.Ping(context.Background()) != nil {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("Redis not reachable again: %v", s.Err())
		}
	}
	if s.Err() != nil {
		t.Fatalf("Err = %v after a Ping that succeeded", s.Err())
	}
}

func TestRedisDown(t *testing.T) {
	var heard atomic.Int32
	const timeout = 100 * time.Millisecond
	opts := StoreOptions{Prefix: "p", Timeout: timeout, OnError: func(error) { heard.Add(1) }}
	// A client set up as package cluster advises: the Store's Timeout
	// bounds every call, retries included.
	client := func(t *testing.T, addr string) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}

	// Each way down starts a Redis and returns its address, what takes it
	// down, and what brings it back (nil: it stays down).
	for _, c := range []struct {
		name  string
		start func(t *testing.T) (addr string, down, back func() error)
	}{
		{"miniredis closed", func(t *testing.T) (string, func() error, func() error) {
			mr := miniredis.RunT(t)
			return mr.Addr(), func() error { mr.Close(); return nil }, mr.Restart
		}},
		{"redis stopped", func(t *testing.T) (string, func() error, func() error) {
			srv := redistest.Start(t)
			return srv.Addr, srv.Stop, nil
		}},
		{"redis hung", func(t *testing.T) (string, func() error, func() error) {
			srv := redistest.Start(t)
			return srv.Addr, srv.Pause, srv.Resume
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr, down, back := c.start(t)
			s := NewStore(client(t, addr), opts)
			mustAdd(t, s, device("A", "c-A", "n1"))
			if err := down(); err != nil {
				t.Fatal(err)
			}
			wantDown(t, s, &heard, timeout+100*time.Millisecond)
			if back == nil {
				return
			}
			if err := back(); err != nil {
				t.Fatal(err)
			}
			waitHealthy(t, s)
			// What Redis held is there still. (A script that timed out
			// on a hung Redis may have run when it went on: the caller
			// could not know, which is why a node fences itself on Err.)
			if d, ok := s.Get("A"); !ok || d.ConnID != "c-A" {
				t.Fatalf("Get(A) = %+v, %v", d, ok)
			}
			mustAdd(t, s, device("B", "c-B", "n1"))
		})
	}
}

func TestScriptsSurviveAFlushedCache(t *testing.T) {
	forEach(t, func(t *testing.T, rdb *redis.Client) {
		s := NewStore(rdb, StoreOptions{Prefix: t.Name()})
		mustAdd(t, s, device("A", "c-A", "n1"))
		if err := rdb.ScriptFlush(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		mustAdd(t, s, device("B", "c-B", "n1"))
		if s.Err() != nil {
			t.Fatalf("Err = %v", s.Err())
		}
	})
}

// dropProxy passes connections through to a Redis. Armed with a command,
// it lets the next such command through, then cuts the connection instead
// of passing the reply: the command ran, but its caller cannot know.
type dropProxy struct {
	ln      net.Listener
	backend string
	armed   atomic.Pointer[string] // the command whose reply to drop
	mu      sync.Mutex             // guards sent
	sent    map[string]int         // how many times each command was sent
}

func startDropProxy(t *testing.T, backend string) *dropProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dropProxy{ln: ln, backend: backend, sent: map[string]int{}}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *dropProxy) arm(cmd string) { p.armed.Store(&cmd) }

func (p *dropProxy) count(cmd string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent[cmd]
}

func (p *dropProxy) serve(c net.Conn) {
	b, err := net.Dial("tcp", p.backend)
	if err != nil {
		_ = c.Close()
		return
	}
	var drop atomic.Bool
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				low := bytes.ToLower(buf[:n])
				p.mu.Lock()
				for _, cmd := range []string{"evalsha", "eval", "hgetall"} {
					if bytes.Contains(low, []byte("\r\n"+cmd+"\r\n")) {
						p.sent[cmd]++
						if a := p.armed.Load(); a != nil && *a == cmd && p.armed.CompareAndSwap(a, nil) {
							drop.Store(true)
						}
					}
				}
				p.mu.Unlock()
				if _, err := b.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				_ = b.Close()
				return
			}
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := b.Read(buf)
		if drop.Load() {
			break
		}
		if n > 0 {
			if _, err := c.Write(buf[:n]); err != nil {
				break
			}
		}
		if err != nil && err != io.EOF {
			break
		}
		if err == io.EOF {
			break
		}
	}
	_ = c.Close()
	_ = b.Close()
}

// TestScriptsAreNotResent: a script whose reply is lost is not run again
// by go-redis's retries, which would not do the same a second time; a read
// is retried.
func TestScriptsAreNotResent(t *testing.T) {
	mr := miniredis.RunT(t)
	p := startDropProxy(t, mr.Addr())
	rdb := redis.NewClient(&redis.Options{Addr: p.ln.Addr().String(), MaxRetries: 3})
	t.Cleanup(func() { _ = rdb.Close() })
	var heard atomic.Int32
	s := NewStore(rdb, StoreOptions{Prefix: "p", OnError: func(error) { heard.Add(1) }})
	mustAdd(t, s, device("A", "c-A", "n1")) // Redis has the script now

	before := p.count("evalsha")
	p.arm("evalsha")
	_, err := s.Add(device("B", "c-B", "n1"), false)
	if !errors.Is(err, ErrRedis) || heard.Load() != 1 {
		t.Fatalf("Add with its reply lost = %v (%d heard); want an ErrRedis", err, heard.Load())
	}
	if n := p.count("evalsha") - before; n != 1 {
		t.Fatalf("the script was sent %d times, want once", n)
	}
	// It ran: B is there, held by its connection, which a second run
	// would have refused as ID_IN_USE.
	if d, ok := s.Get("B"); !ok || d.ConnID != "c-B" {
		t.Fatalf("Get(B) = %+v, %v", d, ok)
	}
	if s.Err() != nil {
		t.Fatalf("Err after a successful Get = %v", s.Err())
	}

	before = p.count("hgetall")
	p.arm("hgetall")
	if d, ok := s.Get("A"); !ok || d.ConnID != "c-A" {
		t.Fatalf("Get(A) with a reply lost = %+v, %v; want it retried", d, ok)
	}
	if n := p.count("hgetall") - before; n != 2 {
		t.Fatalf("the read was sent %d times, want twice", n)
	}
}

func TestBadRecordsAndRepliesFailCleanly(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	s := NewStore(rdb, StoreOptions{Prefix: "p"})
	mr.HSet("{p}:dev:A", "id", "A", "gen", "two")
	mr.SAdd("{p}:devs", "A")
	if _, ok := s.Get("A"); ok || !errors.Is(s.Err(), ErrRedis) {
		t.Fatalf("Get of a bad record: ok %v, Err %v", ok, s.Err())
	}
	if ds := s.Devices(); ds != nil {
		t.Fatalf("Devices with a bad record = %+v", ds)
	}
	mr.HSet("{p}:pairs", "A", "nospace")
	if ps := s.Pairs(); ps != nil {
		t.Fatalf("Pairs with a bad field = %+v", ps)
	}

	for _, v := range []any{
		nil, "added", int64(1),
		[]any{},
		[]any{"nonsense"},
		[]any{"added", "more"},
		[]any{"replaced"},
		[]any{"replaced", "x"},
		[]any{"replaced", []any{}},
		[]any{"replaced", []any{[]any{"id"}, []any{}, []any{}}},
		[]any{"replaced", []any{[]any{"id", "A"}, []any{"A"}, []any{}}},
		[]any{"replaced", []any{[]any{"id", "A"}, []any{}, []any{"1", "A"}}},
		[]any{"replaced", []any{[]any{"id", "A"}, []any{}, []any{"x", "A", "B"}}},
		[]any{"replaced", []any{[]any{"id", "A", "gen", "2", "eio", "4"}, []any{"A", "B", "yesterday"}, []any{}}},
		[]any{"resumed", "n1"},
		[]any{"resumed", "n1", int64(3)},
	} {
		r := &reply{op: "test"}
		r.v, r.err = asList(v)
		switch r.str() {
		case "replaced":
			r.teardown()
		case "resumed":
			r.str()
			r.str()
		case "added":
		default:
			r.bad()
		}
		if err := r.check(s); !errors.Is(err, ErrRedis) {
			t.Errorf("reply %#v read without an error", v)
		}
	}
}

func TestTimes(t *testing.T) {
	for _, tm := range []time.Time{
		{},
		time.Date(2024, 2, 29, 23, 59, 58, 123456789, time.FixedZone("", -(3*3600+1800))),
		time.Now(),
		time.Unix(0, 1).UTC(),
	} {
		got, err := decodeTime(encodeTime(tm))
		if err != nil || !got.Equal(tm) || got.IsZero() != tm.IsZero() {
			t.Errorf("%v: came back as %v, %v", tm, got, err)
		}
		if _, off := got.Zone(); !tm.IsZero() && off != func() int { _, o := tm.Zone(); return o }() {
			t.Errorf("%v: came back in another zone: %v", tm, got)
		}
	}
	// Beyond the years RFC 3339 holds, to the second.
	far := time.Date(12000, 1, 1, 0, 0, 1, 500, time.UTC)
	if got, err := decodeTime(encodeTime(far)); err != nil || !got.Equal(far.Truncate(time.Second)) {
		t.Errorf("%v: came back as %v, %v", far, got, err)
	}
	for _, bad := range []string{"yesterday", "@x"} {
		if _, err := decodeTime(bad); err == nil {
			t.Errorf("decodeTime(%q) did not fail", bad)
		}
	}
}

// TestConcurrentNodes drives one Redis from two nodes' stores at once, with
// every kind of change, and checks the invariants of the key layout after.
func TestConcurrentNodes(t *testing.T) {
	forEach(t, func(t *testing.T, rdb *redis.Client) {
		opts := &redis.Options{Addr: rdb.Options().Addr}
		nodes := []*Store{
			NewStore(redis.NewClient(opts), StoreOptions{Prefix: "c"}),
			NewStore(redis.NewClient(opts), StoreOptions{Prefix: "c"}),
		}
		const workers, ops, ids = 8, 300, 10
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rnd := rand.New(rand.NewPCG(uint64(w), 2))
				node := fmt.Sprint("n", w%2)
				s := nodes[w%2]
				id := func() string { return fmt.Sprint("D", rnd.IntN(ids)) }
				var shakes []uint64
				for i := range ops {
					switch rnd.IntN(7) {
					case 0:
						_, err := s.Add(device(id(), fmt.Sprintf("c%d-%d", w, i), node), rnd.IntN(3) == 0)
						if err != nil && protocol.CodeOf(err) != protocol.CodeIDInUse {
							t.Errorf("Add: %v", err)
						}
					case 1:
						if d, ok := s.Get(id()); ok {
							s.Remove(d.ID, d.ConnID)
						}
					case 2:
						if d, ok := s.Get(id()); ok {
							s.Suspend(d.ID, d.ConnID)
						}
					case 3, 4:
						res, err := s.BeginPair(id(), id())
						if res.Handshake != nil {
							shakes = append(shakes, res.Handshake.ID)
						}
						if err != nil && protocol.CodeOf(err) == "" {
							t.Errorf("BeginPair: %v", err)
						}
					case 5:
						if len(shakes) > 0 {
							h := shakes[rnd.IntN(len(shakes))]
							if _, err := s.EndPair(h, rnd.IntN(3) > 0); err != nil && !errors.Is(err, server.ErrStale) {
								t.Errorf("EndPair: %v", err)
							}
						}
					case 6:
						s.Unpair(id())
					}
				}
			}()
		}
		wg.Wait()
		for _, s := range nodes {
			if s.Err() != nil {
				t.Fatalf("Err = %v", s.Err())
			}
		}
		checkInvariants(t, rdb, "{c}:")
		t.Logf("%d devices, %d pairs after %d changes", nodes[0].Len(), len(nodes[0].Pairs()), workers*ops)

		// Every node lost: the reapers leave nothing behind.
		for _, node := range []string{"n0", "n1"} {
			ds, err := nodes[0].DevicesOn(node)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ds {
				if _, ok := nodes[1].Remove(d.ID, d.ConnID); !ok {
					t.Fatalf("Remove(%s, %s) failed", d.ID, d.ConnID)
				}
			}
		}
		if ks := keys(t, rdb, "{c}:"); len(ks) > 1 {
			t.Fatalf("keys left: %v", ks)
		}
	})
}

// checkInvariants reads every key under root and checks that devices,
// pairs, handshakes and the node index agree.
func checkInvariants(t *testing.T, rdb *redis.Client, root string) {
	t.Helper()
	ctx := context.Background()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
	}
	devs := map[string]map[string]string{}
	inSet, _ := rdb.SMembers(ctx, root+"devs").Result()
	for _, k := range keys(t, rdb, root+"dev:") {
		id := strings.TrimPrefix(k, root+"dev:")
		devs[id] = rdb.HGetAll(ctx, k).Val()
	}
	if len(inSet) != len(devs) {
		fail("devs set %v, records %d", inSet, len(devs))
	}
	for _, id := range inSet {
		if devs[id] == nil {
			fail("%s in devs, without a record", id)
		}
	}
	pairs := rdb.HGetAll(ctx, root+"pairs").Val()
	asker := map[string]string{} // both sides of each pair -> its asker
	for a, v := range pairs {
		p, err := decodePair(a, v)
		if err != nil {
			fail("pair %s: %v", a, err)
			continue
		}
		asker[p.A], asker[p.B] = p.A, p.A
		if devs[p.A]["peer"] != p.B || devs[p.B]["peer"] != p.A {
			fail("pair %s-%s: peers %q, %q", p.A, p.B, devs[p.A]["peer"], devs[p.B]["peer"])
		}
	}
	shakeKeys := keys(t, rdb, root+"hs:")
	for _, k := range shakeKeys {
		h := strings.TrimPrefix(k, root+"hs:")
		hs := rdb.HGetAll(ctx, k).Val()
		if devs[hs["src"]]["out"] != h || devs[hs["dst"]]["in"] != h {
			fail("handshake %s %v: src out %q, dst in %q", h, hs, devs[hs["src"]]["out"], devs[hs["dst"]]["in"])
		}
	}
	shakes := 0
	for id, d := range devs {
		if d["id"] != id {
			fail("record %s has id %q", id, d["id"])
		}
		if !rdb.SIsMember(ctx, root+"node:"+d["node"], id).Val() {
			fail("%s not in the set of its node %q", id, d["node"])
		}
		switch {
		case d["peer"] != "":
			if _, ok := asker[id]; !ok || d["pairing"] != "" || d["out"] != "" || d["in"] != "" {
				fail("paired %s: %v", id, d)
			}
		case d["away"] == "1" && (d["pairing"] != "" || d["out"] != "" || d["in"] != ""):
			// An away device may have lost its peer (an Unpair, or its peer
			// removed: the relay ends it then, or at the end of its window),
			// but it never takes part in a handshake.
			fail("%s away in a handshake: %v", id, d)
		case d["out"] != "" && d["in"] != "":
			fail("%s both asks and is asked: %v", id, d)
		case d["out"] != "":
			shakes++
			if hs := rdb.HGetAll(ctx, root+"hs:"+d["out"]).Val(); hs["src"] != id || hs["dst"] != d["pairing"] {
				fail("%s asks %s in %s, handshake %v", id, d["pairing"], d["out"], hs)
			}
		case d["in"] != "":
			if hs := rdb.HGetAll(ctx, root+"hs:"+d["in"]).Val(); hs["dst"] != id || hs["src"] != d["pairing"] {
				fail("%s asked by %s in %s, handshake %v", id, d["pairing"], d["in"], hs)
			}
		case d["pairing"] != "":
			fail("%s pairing without a handshake: %v", id, d)
		}
	}
	if shakes != len(shakeKeys) {
		fail("%d devices asking, %d handshakes", shakes, len(shakeKeys))
	}
	for _, k := range keys(t, rdb, root+"node:") {
		node := strings.TrimPrefix(k, root+"node:")
		for _, id := range rdb.SMembers(ctx, k).Val() {
			if devs[id]["node"] != node {
				fail("%s in the set of %s, its record says %q", id, node, devs[id]["node"])
			}
		}
	}
}

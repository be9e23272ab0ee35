package peer_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/p2prelay/p2prelay/internal/testkit"
	"github.com/p2prelay/p2prelay/peer"
	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server"
)

// streamPair dials A and B (B takes streams, with mods) pairs them and
// opens a stream from A; it returns both ends.
func streamPair(t *testing.T, r string, mods ...func(*peer.Config)) (a, b *device, ea, eb *peer.Stream) {
	t.Helper()
	streams := make(chan *peer.Stream, 1)
	a = dial(t, r, "A", mods...)
	b = dial(t, r, "B", append(mods, func(c *peer.Config) { c.OnStream = func(s *peer.Stream) { streams <- s } })...)
	pair(t, a, b)
	ea, err := a.OpenStream(context.Background())
	if err != nil {
		t.Fatalf("open stream: %v", err)
	}
	select {
	case eb = <-streams:
	case <-time.After(testkit.Wait):
		t.Fatal("B got no stream")
	}
	if ea.Peer() != "B" || eb.Peer() != "A" {
		t.Fatalf("ends name %q and %q", ea.Peer(), eb.Peer())
	}
	return a, b, ea, eb
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestStreamBothWays: each end writes and closes its writing side; each
// reads everything the other wrote, then io.EOF; CloseWrite returns once
// the other end has read it all.
func TestStreamBothWays(t *testing.T) {
	for _, window := range []int{1, 4} {
		r := start(t, server.Config{Rate: -1})
		_, _, ea, eb := streamPair(t, r.URL, func(c *peer.Config) {
			c.StreamChunk = 64 << 10
			c.StreamWindow = window
		})
		ab := randomBytes(t, 3<<20+123)
		ba := randomBytes(t, 100<<10)
		type result struct {
			got []byte
			err error
		}
		readAll := func(s *peer.Stream) <-chan result {
			ch := make(chan result, 1)
			go func() {
				got, err := io.ReadAll(s)
				ch <- result{got, err}
			}()
			return ch
		}
		gotB, gotA := readAll(eb), readAll(ea)
		closed := make(chan error, 1)
		go func() {
			if _, err := eb.Write(ba); err != nil {
				closed <- err
				return
			}
			closed <- eb.CloseWrite()
		}()
		if n, err := ea.ReadFrom(bytes.NewReader(ab)); err != nil || n != int64(len(ab)) {
			t.Fatalf("window %d: A wrote %d, %v", window, n, err)
		}
		if err := ea.CloseWrite(); err != nil {
			t.Fatalf("window %d: A close write: %v", window, err)
		}
		if res := <-gotB; res.err != nil || !bytes.Equal(res.got, ab) {
			t.Fatalf("window %d: B read %d bytes (%v), want %d", window, len(res.got), res.err, len(ab))
		}
		if err := <-closed; err != nil {
			t.Fatalf("window %d: B: %v", window, err)
		}
		if res := <-gotA; res.err != nil || !bytes.Equal(res.got, ba) {
			t.Fatalf("window %d: A read %d bytes (%v), want %d", window, len(res.got), res.err, len(ba))
		}
		if w, rd := ea.Stats(); w != int64(len(ab)) || rd != int64(len(ba)) {
			t.Fatalf("window %d: A's stats %d written, %d read", window, w, rd)
		}
		if err := ea.Close(); err != nil {
			t.Fatal(err)
		}
		if err := eb.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStreamBackPressure: a reader that does not read holds the writer
// once its buffer is full: with one chunk in flight, the writer has sent
// exactly what fills the buffer, and its Write waits; reading lets the
// rest through, in order. CloseWrite returns once the reader has read the
// end.
func TestStreamBackPressure(t *testing.T) {
	r := start(t, server.Config{})
	const chunk, buffer = 16 << 10, 64 << 10
	_, _, ea, eb := streamPair(t, r.URL, func(c *peer.Config) {
		c.StreamChunk = chunk
		c.StreamBuffer = buffer
	})
	data := randomBytes(t, 40*chunk)
	wrote := make(chan error, 1)
	go func() {
		_, err := ea.Write(data)
		wrote <- err
	}()
	deadline := time.After(testkit.Wait)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for w, _ := ea.Stats(); w < buffer; w, _ = ea.Stats() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("the writer sent %d bytes, never filled the reader's %d", w, buffer)
		}
	}
	// The reader holds the acknowledgement of the chunk that filled it: no
	// chunk is in flight, none more can go.
	if w, _ := ea.Stats(); w != buffer {
		t.Fatalf("the writer sent %d bytes past a reader holding %d", w, buffer)
	}
	select {
	case err := <-wrote:
		t.Fatalf("Write returned (%v) while the reader held it back", err)
	default:
	}
	got := make([]byte, len(data))
	if _, err := io.ReadFull(eb, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the reader read other bytes")
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- ea.CloseWrite() }()
	select {
	case err := <-closed:
		t.Fatalf("CloseWrite returned (%v) before the reader read the end", err)
	default:
	}
	if n, err := eb.Read(got); n != 0 || err != io.EOF {
		t.Fatalf("read at the end: %d, %v; want io.EOF", n, err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}

// TestStreamRefusalsAndEnd: a peer without OnStream refuses; a stream
// needs a peer; a stream ends, for reader and writer, with the pair.
func TestStreamRefusalsAndEnd(t *testing.T) {
	r := start(t, server.Config{})
	a := dial(t, r.URL, "A")
	if _, err := a.OpenStream(context.Background()); !errors.Is(err, peer.ErrNotPaired) {
		t.Fatalf("unpaired: %v, want NOT_PAIRED", err)
	}
	b := dial(t, r.URL, "B")
	pair(t, a, b)
	if _, err := a.OpenStream(context.Background()); !errors.Is(err, peer.ErrRefused) {
		t.Fatalf("a peer that takes no streams: %v, want REFUSED", err)
	}
	_ = a.Close()
	_ = b.Close()

	a, b, ea, eb := streamPair(t, r.URL)
	if _, err := ea.Write([]byte("before")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 6)
	if _, err := io.ReadFull(eb, got); err != nil || string(got) != "before" {
		t.Fatalf("B read %q, %v", got, err)
	}
	if err := b.Unpair(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.notice(t, peer.Unpaired)
	if _, err := eb.Read(got); !errors.Is(err, peer.ErrStreamEnded) {
		t.Fatalf("B read after unpair: %v, want ErrStreamEnded", err)
	}
	if _, err := ea.Read(got); !errors.Is(err, peer.ErrStreamEnded) {
		t.Fatalf("A read after unpair: %v, want ErrStreamEnded", err)
	}
	if _, err := ea.Write([]byte("after")); !errors.Is(err, peer.ErrStreamEnded) {
		t.Fatalf("A write after unpair: %v, want ErrStreamEnded", err)
	}
	if protocol.CodeOf(a.Emit(context.Background(), "x")) != protocol.CodeNotPaired {
		t.Fatal("still paired")
	}
}

// TestStreamKeepsToTheRelayRate: a relay that allows 50 requests a second
// (bursts of 100) refuses chunks sent faster, which ends the stream; a
// writer paced a little below that rate (Config.StreamRate: room for the
// device's other requests) gets everything through.
func TestStreamKeepsToTheRelayRate(t *testing.T) {
	for _, paced := range []bool{false, true} {
		// Unpaced, 2000 chunks are refused unless sent slower than 53 a
		// second.
		data := randomBytes(t, 2000<<10)
		if paced {
			data = data[:150<<10]
		}
		r := start(t, server.Config{Rate: 50, Burst: 100})
		a, b, ea, eb := streamPair(t, r.URL, func(c *peer.Config) {
			c.StreamChunk = 1 << 10
			c.StreamWindow = 4
			c.StreamRate = -1
			if paced {
				c.StreamRate = 45
			}
		})
		got := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(eb)
			got <- b
		}()
		_, err := ea.Write(data)
		if err == nil {
			err = ea.CloseWrite()
		}
		switch {
		case paced && err != nil:
			t.Fatalf("paced: %v", err)
		case paced && !bytes.Equal(<-got, data):
			t.Fatal("paced: the reader read other bytes")
		case !paced && protocol.CodeOf(err) != protocol.CodeRateLimited:
			t.Fatalf("unpaced: %v, want RATE_LIMITED", err)
		}
		_ = a.Close()
		_ = b.Close()
	}
}

// TestConcurrentWritesStayWhole: a peer writes from several goroutines at
// once (stream chunks, binary events, acknowledgements): the library
// writes a binary packet as several frames, and each packet's frames must
// follow each other, or the relay closes the connection.
func TestConcurrentWritesStayWhole(t *testing.T) {
	r := start(t, server.Config{Rate: -1})
	a, b, ea, eb := streamPair(t, r.URL, func(c *peer.Config) {
		c.StreamChunk = 4 << 10
		c.StreamWindow = 8
	})
	a.Handle("q", func(ev peer.Event) { _ = ev.Ack(ev.Args...) })
	data := randomBytes(t, 1<<20)
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(eb)
		got <- b
	}()
	ctx := context.Background()
	errs := make(chan error, 3)
	go func() { // B asks, A answers from its handlers' goroutine
		for i := range 200 {
			if _, err := b.EmitAck(ctx, "q", []byte{byte(i)}); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	go func() { // A sends binary events
		for i := range 200 {
			if err := a.Emit(ctx, "bin", []byte{byte(i), 1, 2}); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	go func() { // and streams
		_, err := ea.Write(data)
		if err == nil {
			err = ea.CloseWrite()
		}
		errs <- err
	}()
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(<-got, data) {
		t.Fatal("the reader read other bytes")
	}
	for range 200 {
		b.event(t)
	}
	if !a.Connected() || !b.Connected() {
		t.Fatal("a connection dropped")
	}
}

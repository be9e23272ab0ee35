package socketio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// conns returns the two ends of a pipe and of a loopback TCP connection:
// the first writes through a flusher only, the second also at once.
func connPairs(t *testing.T) map[string][2]net.Conn {
	t.Helper()
	pa, pb := net.Pipe()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	ta, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	tb := <-accepted
	return map[string][2]net.Conn{"pipe": {pa, pb}, "tcp": {tb, ta}}
}

func TestCoalescingConnDeliversInOrderAndFlushesOnClose(t *testing.T) {
	for name, p := range connPairs(t) {
		t.Run(name, func(t *testing.T) { testInOrder(t, p[0], p[1]) })
	}
}

func testInOrder(t *testing.T, a, b net.Conn) {
	c := newCoalescingConn(a)
	var want bytes.Buffer
	got := make(chan []byte, 1)
	go func() {
		all, _ := io.ReadAll(b)
		got <- all
	}()
	var wg sync.WaitGroup
	var mu sync.Mutex // writers take turns, so the order is known
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				mu.Lock()
				msg := []byte{byte(w), byte(i), '\n'}
				if i%50 == 0 {
					// Now and then more than a socket takes at once, but
					// never so much that a slow reader (a loaded machine)
					// would pass the 8 MiB bound: 16 of these are 2.4 MB.
					msg = bytes.Repeat(msg, 50_000)
				}
				want.Write(msg)
				if _, err := c.Write(msg); err != nil {
					t.Error(err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case all := <-got:
		if !bytes.Equal(all, want.Bytes()) {
			t.Fatalf("received %d bytes, not what was written (%d bytes)", len(all), want.Len())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reader did not finish")
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
}

func TestCoalescingConnReportsWriteErrors(t *testing.T) {
	a, b := net.Pipe()
	c := newCoalescingConn(a)
	b.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := c.Write([]byte("hello"))
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("writes to a closed peer never failed")
		}
		time.Sleep(time.Millisecond)
	}
	_ = c.Close()
}

func TestCoalescingConnCloseDoesNotHangOnAPeerThatDoesNotRead(t *testing.T) {
	a, _ := net.Pipe() // nobody reads the other end
	c := newCoalescingConn(a)
	if _, err := c.Write([]byte("stuck")); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = c.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(closeWait + 5*time.Second):
		t.Fatal("Close hung")
	}
}

func TestDetachingWriterForgetsTheConnection(t *testing.T) {
	seenc := make(chan http.ResponseWriter, 1)
	h := detachOnHijack(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
		} else {
			c.Close()
		}
		seenc <- w
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Upgrade", "websocket")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	seen := <-seenc
	d, ok := seen.(*detachingWriter)
	if !ok {
		t.Fatalf("handler got %T, want *detachingWriter", seen)
	}
	if d.inner() != nil {
		t.Fatal("the hijacked connection is still referenced")
	}
	if _, err := d.Write([]byte("x")); !errors.Is(err, http.ErrHijacked) {
		t.Fatalf("write after hijack: %v", err)
	}
	d.Header().Set("X", "y") // must not panic
}

func TestCoalescingConnClosesOnAPeerThatStopsReading(t *testing.T) {
	a, _ := net.Pipe() // nobody reads the other end
	c := newCoalescingConn(a)
	chunk := make([]byte, 1<<20)
	var err error
	// The flusher takes what is pending once, then blocks on the pipe for
	// good; whatever it took, eight more writes pass the bound.
	for i := 0; i < 32 && err == nil; i++ {
		_, err = c.Write(chunk)
	}
	if !errors.Is(err, errSlowReader) {
		t.Fatalf("write to a peer that does not read: %v, want errSlowReader", err)
	}
	_ = c.Close()
}

func TestCoalescingConnWritesAnIdleConnectionAtOnce(t *testing.T) {
	p := connPairs(t)["tcp"]
	a, b := p[0], p[1]
	defer b.Close()
	c := newCoalescingConn(a)
	defer c.Close()
	for i := 0; i < 3; i++ {
		time.Sleep(2 * burstGap) // idle, not a burst
		if _, err := c.Write([]byte("frame")); err != nil {
			t.Fatal(err)
		}
		// Written by the caller: no flusher was needed, none runs.
		c.mu.Lock()
		flushing, pending := c.flushing, len(c.pending)
		c.mu.Unlock()
		if flushing || pending != 0 {
			t.Fatalf("write %d to an idle connection: flushing %v, %d bytes pending", i, flushing, pending)
		}
		got := make([]byte, 5)
		_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(b, got); err != nil || string(got) != "frame" {
			t.Fatalf("read %q, %v", got, err)
		}
	}
}

func TestCoalescingConnReadsAsNetConnDoes(t *testing.T) {
	p := connPairs(t)["tcp"]
	c, peer := newCoalescingConn(p[0]), p[1]
	defer c.Close()
	buf := make([]byte, 16)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	// What comes later wakes a waiting read.
	go func() {
		time.Sleep(20 * time.Millisecond)
		_, _ = peer.Write([]byte("abc"))
	}()
	if n, err := io.ReadAtLeast(c, buf, 3); err != nil || string(buf[:n]) != "abc" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	// A deadline ends a wait with a timeout.
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := c.Read(buf)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past its deadline: %v, want a timeout", err)
	}
	// Data then the end, arriving together: all of it, then io.EOF.
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	want := bytes.Repeat([]byte("0123456789"), 10)
	_, _ = peer.Write(want)
	peer.Close()
	time.Sleep(20 * time.Millisecond)
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, %v; want %d", len(got), err, len(want))
	}
	c.Close()
	if _, err := c.Read(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
}

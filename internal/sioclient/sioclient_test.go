package sioclient

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	client "github.com/zishang520/socket.io/clients/socket/v3"
)

// websocketOnly are the options the relay's clients use. (The library's
// default transports include WebTransport, whose dial blocks its caller.)
func websocketOnly() Options {
	opts := client.DefaultOptions()
	opts.SetTransports(Transports([]string{"websocket"}))
	return Options{Client: opts}
}

// TestConnectGivesUp: once the context ends, the error says why: the
// last failure, or ErrStuck alone when no attempt got that far.
func TestConnectGivesUp(t *testing.T) {
	refused := errors.New("connection refused")
	if err := gaveUp(refused); !errors.Is(err, refused) || err.Error() != "could not reach the relay: connection refused" {
		t.Fatalf("after a failure: %v", err)
	}
	if err := gaveUp(nil); err != ErrStuck {
		t.Fatalf("after no failure: %v, want ErrStuck", err)
	}

	// A loopback port that nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Connect(done, url, websocketOnly()); err != ErrStuck {
		t.Fatalf("context ended before any attempt: err = %v, want ErrStuck alone", err)
	}
}

// TestConnectRefusedFailsFast: nothing listens at the address; Connect
// says so at once, well before its context ends.
func TestConnectRefusedFailsFast(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	for _, transport := range []string{"websocket", "polling"} {
		t.Run(transport, func(t *testing.T) {
			opts := client.DefaultOptions()
			opts.SetTransports(Transports([]string{transport}))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err := Connect(ctx, url, Options{Client: opts, AttemptTimeout: time.Minute})
			if !errors.Is(err, syscall.ECONNREFUSED) || !Permanent(err) {
				t.Fatalf("err = %v, want connection refused", err)
			}
			if ctx.Err() != nil {
				t.Fatal("Connect waited for its context")
			}
			if !strings.Contains(err.Error(), "connection refused") {
				t.Fatalf("the error does not say why: %v", err)
			}
		})
	}
}

// TestConnectSilentServerHoldsDeadline: a server accepts TCP connections
// and never answers. Connect returns once its context ends, and closes
// every connection it opened within an attempt's timeout: none is left
// dialling in the background.
func TestConnectSilentServerHoldsDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const attempt = 200 * time.Millisecond
	closed := make(chan error, 64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				// The client closes its end: Read ends with EOF, long before
				// this deadline.
				_ = c.SetReadDeadline(time.Now().Add(10 * attempt))
				_, err := io.Copy(io.Discard, c)
				closed <- err
			}()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 3*attempt)
	defer cancel()
	start := time.Now()
	_, err = Connect(ctx, "http://"+ln.Addr().String(), Options{Client: websocketOnly().Client, AttemptTimeout: attempt})
	if err == nil || Permanent(err) {
		t.Fatalf("err = %v, want a failure to retry", err)
	}
	if took := time.Since(start); took > 3*attempt+time.Second {
		t.Fatalf("Connect took %v with a deadline of %v", took, 3*attempt)
	}
	// Each attempt's connection is closed by the client.
	for i := 0; i < 2; i++ {
		if err := <-closed; err != nil {
			t.Fatalf("a connection was left open: %v", err)
		}
	}
}

// TestConnectRetriesUnavailable: a relay that answers 503 (restarting) may
// come back: Connect keeps trying until its context ends.
func TestConnectRetriesUnavailable(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "restarting", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := Connect(ctx, srv.URL, websocketOnly())
	if err == nil || Permanent(err) || ctx.Err() == nil {
		t.Fatalf("err = %v (context %v), want retries until the context ended", err, ctx.Err())
	}
	if hits.Load() < 2 {
		t.Fatalf("%d attempts, want several", hits.Load())
	}
}

// TestFailedAttemptsLeaveNothing: attempts that fail leave no goroutine
// behind (the library's connect timer of each is stopped).
func TestFailedAttemptsLeaveNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	attempt := func() {
		if _, err := Connect(context.Background(), url, websocketOnly()); !Permanent(err) {
			t.Fatalf("err = %v, want a refused connection", err)
		}
	}
	attempt() // the library's own goroutines start with the first
	before := runtime.NumGoroutine()
	for range 50 {
		attempt()
	}
	// Closed attempts end their goroutines soon after; none is left for good.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+5 {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after 50 failed attempts, %d before", runtime.NumGoroutine(), before)
		}
		runtime.Gosched()
	}
}

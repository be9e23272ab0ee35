// Package hostile_test drives a relay on 127.0.0.1 with hostile traffic
// from outside, through real sockets, and asserts the bounds that hold it
// (issue #14). Each test names the case it covers:
//
//	 1 polling payloads of empty packets     TestPollingPayloadOfEmptyPackets
//	 2 binary packets before admission       TestBinaryBeforeAdmission, TestMissingAttachments
//	 3 invalid UTF-8 relayed                 TestInvalidUTF8NeverReachesThePeer (and compat/test/hostile.test.mjs,
//	                                         with the stock socket.io clients as the peer)
//	 4 a polling peer that never polls       TestPollingPeerThatNeverPolls
//	 5 acks the relay stopped waiting for    TestStaleAcksHoldOnlyTheirNumber
//	 6 Engine.IO 3 silent after upgrade      TestSilentAfterUpgrade
//	 7 connections that never join           TestUnjoinedConnections
//	 8 idle HTTP keep-alive connections      TestIdleHTTPConnections
//	 9 lookalike ids                         TestLookalikeIDs (and compat/test/connect.test.mjs)
//	10 a late yes                            TestLateYes
//	11 refusal logs                          TestRefusalLogsAreBounded
//	12 admin tokens                          (admin/, not here)
//	13 heartbeats of healthy devices         TestHealthyDevicesNeverTimeOut
//
// Memory is measured in this process, which holds both the relay and the
// attackers (raw connections, with little of their own): live heap and
// goroutine stacks after a full collection.
package hostile_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/p2prelay/p2prelay/internal/testkit"
	"github.com/p2prelay/p2prelay/server/socketio"
)

// openUnjoined opens n websocket Engine.IO sessions that never join: the
// handshake of a client that sends nothing after it. They are raw TCP
// connections with nothing of their own but their descriptors; the caller
// must close them.
func openUnjoined(t *testing.T, relay string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, n)
	t.Cleanup(func() { closeAll(conns) })
	for i := range conns {
		c, err := net.Dial("tcp", strings.TrimPrefix(relay, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
		fmt.Fprint(c, "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: relay\r\n"+
			"Upgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
		res, err := http.ReadResponse(bufio.NewReaderSize(c, 256), nil)
		if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade %d: %v %v", i, res, err)
		}
	}
	return conns
}

// closeAll closes and forgets conns.
func closeAll(conns []net.Conn) {
	for i, c := range conns {
		if c != nil {
			_ = c.Close()
			conns[i] = nil
		}
	}
}

// closedByRelay reports whether the relay closed every connection, reading
// what is left on each until its end, within d of start.
func closedByRelay(conns []net.Conn, start time.Time, d time.Duration) error {
	for i, c := range conns {
		_ = c.SetReadDeadline(start.Add(d))
		if _, err := io.Copy(io.Discard, c); err != nil {
			return fmt.Errorf("connection %d still open %s after it opened: %v", i, time.Since(start).Round(time.Millisecond), err)
		}
	}
	return nil
}

// Case 7. Connections that never join cost little, are closed at the join
// deadline (socketio.DefaultJoinTimeout, 5 s; the library's own is 45 s),
// and leave nothing behind: a second wave holds no more than the first.
func TestUnjoinedConnections(t *testing.T) {
	const (
		n           = 500
		perConn     = 32 << 10 // budget per connection, heap and stacks (21 KiB measured, 28 KiB with -race)
		residual    = 1 << 20  // what a second wave may leave over the first
		joinTimeout = socketio.DefaultJoinTimeout
	)
	r := testkit.StartRelay(t, socketio.ServiceConfig{})
	base, g0 := liveBytes(), runtime.NumGoroutine()
	var after [2]int64
	for wave := range after {
		start := time.Now()
		conns := openUnjoined(t, r.URL, n)
		opened := time.Now()
		if !eventually(wait, func() bool { return r.IO.Engine().ClientsCount() == n }) {
			t.Fatalf("wave %d: %d sessions, want %d", wave, r.IO.Engine().ClientsCount(), n)
		}
		each := (liveBytes() - base) / n
		goroutines := (runtime.NumGoroutine() - g0) / n
		t.Logf("wave %d: %d unjoined connections: %s and %d goroutines each", wave, n, kib(each), goroutines)
		if each > perConn {
			t.Errorf("wave %d: %s per unjoined connection, budget %s", wave, kib(each), kib(perConn))
		}
		// The first opened is closed first; each within the deadline of
		// its own opening, plus scheduling.
		if err := closedByRelay(conns, start, opened.Sub(start)+joinTimeout+time.Second); err != nil {
			t.Fatalf("wave %d: %v", wave, err)
		}
		t.Logf("wave %d: all closed %s after the first opened", wave, time.Since(start).Round(time.Millisecond))
		closeAll(conns)
		if !eventually(wait, func() bool { return r.IO.Engine().ClientsCount() == 0 && runtime.NumGoroutine() <= g0+2 }) {
			t.Fatalf("wave %d: %d sessions and %d goroutines left", wave, r.IO.Engine().ClientsCount(), runtime.NumGoroutine()-g0)
		}
		after[wave] = liveBytes() - base
		t.Logf("wave %d: %s left, kept by the runtime for its next goroutines", wave, kib(after[wave]))
	}
	if grew := after[1] - after[0]; grew > residual {
		t.Errorf("the second wave left %s more than the first: something accumulates", kib(grew))
	}
	testkit.Dial(t, r.URL, "after-the-waves")
}

// Case 8. An HTTP connection idle between requests is closed after the
// HTTP timeout, as one that is slow to send its headers is; new devices
// and /healthz are served meanwhile.
func TestIdleHTTPConnections(t *testing.T) {
	const (
		n       = 200
		timeout = 300 * time.Millisecond
	)
	r := testkit.StartRelay(t, socketio.ServiceConfig{HTTPTimeout: timeout})
	idle := make([]net.Conn, n)
	start := time.Now()
	for i := range idle {
		c := rawTCP(t, r.URL)
		fmt.Fprint(c, "GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n")
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("healthz: %v %v", res, err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		idle[i] = c
	}
	slow := rawTCP(t, r.URL)
	fmt.Fprint(slow, "GET /healthz HTTP/1.1\r\nHost: rel")
	testkit.Dial(t, r.URL, "while-they-idle")
	if err := closedByRelay(append(idle, slow), start, time.Since(start)+timeout+2*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d idle keep-alive connections and a slow one closed %s after the first opened", n, time.Since(start).Round(time.Millisecond))
	res, err := http.Get(r.URL + "/healthz")
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("healthz after: %v %v", res, err)
	}
	_ = res.Body.Close()
}

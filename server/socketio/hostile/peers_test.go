package hostile_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/p2prelay/p2prelay/internal/testkit"
	"github.com/p2prelay/p2prelay/server"
	"github.com/p2prelay/p2prelay/server/socketio"
)

// emitBinary sends target a P2P_EMIT of one binary argument.
func emitBinary(d *rawWS, target string, blob []byte) error {
	if err := d.write(ws.TextMessage, []byte(`451-["P2P_EMIT",{"targetClientId":"`+target+`","event":"blob","args":[{"_placeholder":true,"num":0}]}]`)); err != nil {
		return err
	}
	return d.write(ws.BinaryMessage, blob)
}

// Case 4. A paired device on long-polling that stops polling (it still
// POSTs a pong now and then, so the heartbeat keeps it) is closed once
// 8 MiB wait unsent for it, as a websocket device that stops reading is:
// what its peer sends does not pile up. The probe saw 1,940 messages of
// 64 KiB (127 MB) pile up.
func TestPollingPeerThatNeverPolls(t *testing.T) {
	const (
		messages = 320 // 20 MiB, more than twice the bound; the probe sent 1,940
		size     = 64 << 10
		// What may wait unsent for it, and room for what is on its way.
		bound = 8<<20 + 4<<20
	)
	// The engine pings B, which answers blindly; A's pongs wait behind
	// its flood: a long ping timeout keeps A. No resume window: nothing is
	// held for B once it is closed (that hold has a bound of its own,
	// --resume-window's 4 MiB).
	r := testkit.StartRelay(t, socketio.ServiceConfig{
		PingInterval: 500 * time.Millisecond, PingTimeout: 20 * time.Second,
		Relay: server.Config{Rate: server.Unlimited, ResumeWindow: -1},
	})
	a := dialWS(t, r.URL, 4, url.Values{"clientId": {"A"}}, true)
	a.connect()
	b, _ := handshakePoll(t, r.URL, 4, url.Values{"clientId": {"B"}})
	joinPoll(t, b)
	b.postText(`420["P2P_REGISTER","A"]`)
	ask := regexp.MustCompile(`^42(\d+)\["P2P_REGISTER","B"\]$`)
	a.send("43" + ask.FindStringSubmatch(a.next(ask.MatchString))[1] + "[true]")
	if !eventually(wait, func() bool { return peerOf(r.Relay, "B") == "A" }) {
		t.Fatal("not paired")
	}
	// B polls no more; it answers the pings it never reads, blindly.
	stop := make(chan struct{})
	var pongs sync.WaitGroup
	pongs.Add(1)
	go func() {
		defer pongs.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if b.postText("3") != http.StatusOK {
					return // the relay closed it
				}
			}
		}
	}()
	defer func() { close(stop); pongs.Wait() }()

	base := liveBytes()
	// Binary: the relay passes it on as it is, where it reads JSON text
	// byte by byte (slow under the race detector). A waits for the relay
	// every 16 messages, so that what is measured is what waits for B, not
	// what A has sent and the relay not yet read.
	blob := make([]byte, size)
	var peak int64
	for i := range messages {
		if err := emitBinary(a, "B", blob); err != nil {
			t.Fatal(err)
		}
		if i%16 == 15 {
			a.send(fmt.Sprintf(`42%d["LIST_CLIENTS"]`, i))
			a.next(func(s string) bool { return strings.HasPrefix(s, fmt.Sprintf("43%d[", i)) })
			peak = max(peak, liveBytes()-base)
		}
	}
	peak = max(peak, liveBytes()-base)
	t.Logf("%d messages of %s sent to a peer that does not poll: at most %s held", messages, kib(size), kib(peak))
	if peak > bound {
		t.Errorf("%s held for a peer that does not poll, bound %s", kib(peak), kib(bound))
	}
	if !eventually(wait, func() bool { return gone(b) }) {
		t.Fatal("the device that does not poll is still connected")
	}
	if a.isClosed(0) {
		t.Fatal("the sender was closed")
	}
}

// Case 5. A request the relay stopped waiting for (its ack timed out)
// costs the relay its number only, whatever its arguments: a device that
// never answers holds little; past the bound on unanswered requests its
// connection is closed.
func TestStaleAcksHoldOnlyTheirNumber(t *testing.T) {
	const (
		requests = 200
		size     = 16 << 10
		perAck   = 2 << 10 // budget per request left unanswered (0.1 KiB measured, 0.8 KiB with -race)
	)
	r := testkit.StartRelay(t, socketio.ServiceConfig{Relay: server.Config{
		AckTimeout: 200 * time.Millisecond, Rate: server.Unlimited,
	}})
	a := dialWS(t, r.URL, 4, url.Values{"clientId": {"A"}}, true)
	a.connect()
	b := dialWS(t, r.URL, 4, url.Values{"clientId": {"B"}}, true)
	b.connect()
	pairRaw(t, a, b, "B", "A")

	timedOut := func(head string) bool {
		return strings.HasPrefix(head, "43") && strings.Contains(head, `{"error":{"code":"TIMEOUT"`)
	}
	timeouts := func(n int) {
		t.Helper()
		if !eventually(wait, func() bool { return a.countIf(timedOut) >= n }) {
			t.Fatalf("%d requests answered TIMEOUT, want %d", a.countIf(timedOut), n)
		}
	}
	request := func(from, n int) {
		args := strings.Repeat("y", size)
		for i := range n {
			a.send(fmt.Sprintf(`42%d["P2P_EMIT_ACKNOWLEDGE",{"targetClientId":"B","event":"q","args":["%s"]}]`, from+i, args))
		}
	}
	base := liveBytes()
	start := time.Now()
	request(1000, requests)
	timeouts(requests)
	t.Logf("%d requests timed out after %s", requests, time.Since(start).Round(time.Millisecond))
	held := liveBytes() - base
	t.Logf("%d requests of %s left unanswered: %s held, %s each", requests, kib(size), kib(held), kib(held/requests))
	if held > requests*perAck {
		t.Errorf("%s held for %d stale requests, budget %s each", kib(held), requests, kib(perAck))
	}
	if b.isClosed(0) {
		t.Fatal("closed before the bound")
	}
	// Past max(--max-pending-acks, 256) stale requests, the device is not
	// listening: its connection is closed.
	start = time.Now()
	request(2000, server.DefaultMaxPendingAcks)
	if !b.isClosed(wait) {
		t.Fatalf("a device that leaves %d requests unanswered is still connected", requests+server.DefaultMaxPendingAcks)
	}
	t.Logf("closed %s later", time.Since(start).Round(time.Millisecond))
}

// eio3Payload frames Engine.IO 3 text packets as "len:packet".
func eio3Payload(packets ...string) string {
	var sb strings.Builder
	for _, p := range packets {
		fmt.Fprintf(&sb, "%d:%s", len([]rune(p)), p)
	}
	return sb.String()
}

// Case 6. An Engine.IO 3 device that goes silent after its websocket
// upgrade is closed within the heartbeat's bound (ping interval, ping
// timeout and half a ping timeout), its peer told at once: the engine
// forgets its heartbeat at the upgrade and let it live 120 s.
func TestSilentAfterUpgrade(t *testing.T) {
	const interval, timeout = 500 * time.Millisecond, 300 * time.Millisecond
	bound := interval + timeout + timeout/2
	r := testkit.StartRelay(t, socketio.ServiceConfig{
		PingInterval: interval, PingTimeout: timeout,
		Relay: server.Config{ResumeWindow: -1},
	})
	y := dialWS(t, r.URL, 4, url.Values{"clientId": {"Y"}}, true)
	y.connect()
	x, _ := handshakePoll(t, r.URL, 3, url.Values{"deviceId": {"X"}})
	x.getUntil("40")
	x.postText(eio3Payload(`421["P2P_REGISTER","Y"]`, "2"))
	ask := regexp.MustCompile(`^42(\d+)\["P2P_REGISTER","X"\]$`)
	y.send("43" + ask.FindStringSubmatch(y.next(ask.MatchString))[1] + "[true]")
	if !eventually(wait, func() bool { return peerOf(r.Relay, "X") == "Y" }) {
		t.Fatal("not paired")
	}
	x.postText(eio3Payload("2"))

	// The upgrade, as socket.io-client 2.x makes it, then silence.
	sid := regexp.MustCompile(`sid=([^&]+)`).FindStringSubmatch(x.base)[1]
	c, _, err := ws.DefaultDialer.Dial(wsURL(r.URL, 3, url.Values{"sid": {sid}, "deviceId": {"X"}}), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WriteMessage(ws.TextMessage, []byte("2probe")); err != nil {
		t.Fatal(err)
	}
	if _, probe, err := c.ReadMessage(); err != nil || string(probe) != "3probe" {
		t.Fatalf("probe answered %q, %v", probe, err)
	}
	if err := c.WriteMessage(ws.TextMessage, []byte("5")); err != nil {
		t.Fatal(err)
	}
	silent := time.Now()
	closed := make(chan time.Duration, 1)
	go func() {
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				closed <- time.Since(silent)
				return
			}
		}
	}()
	y.next(func(s string) bool { return s == `42["P2P_DISCONNECT"]` })
	told := time.Since(silent)
	var after time.Duration
	select {
	case after = <-closed:
	case <-time.After(wait):
		t.Fatal("the silent device is still connected")
	}
	t.Logf("silent after its upgrade: closed after %s, its peer told after %s (bound %s)", after.Round(time.Millisecond), told.Round(time.Millisecond), bound)
	if after > bound+time.Second || told > bound+time.Second {
		t.Errorf("closed after %s, peer told after %s; bound %s", after, told, bound)
	}
	if p := peerOf(r.Relay, "Y"); p != "" {
		t.Errorf("its peer is still paired with %q", p)
	}
}

// Case 13. Devices that answer every ping are never dropped for "ping
// timeout", at the defaults' ratio (25 s interval, 20 s timeout) scaled
// down 50 times, over websocket and polling: the engine arms its pong
// timer after it sends the ping, and a pong it handles in between is
// echoed to it once the timer is armed (socketio's pongs). Without the
// echo, a few of them are dropped in most runs.
func TestHealthyDevicesNeverTimeOut(t *testing.T) {
	const (
		interval, timeout = 500 * time.Millisecond, 400 * time.Millisecond
		websockets        = 100
		pollers           = 10
		pings             = 8
	)
	r := testkit.StartRelay(t, socketio.ServiceConfig{PingInterval: interval, PingTimeout: timeout})
	devs := make([]*rawWS, websockets)
	for i := range devs {
		devs[i] = dialWS(t, r.URL, 4, url.Values{"clientId": {fmt.Sprint("ws-", i)}}, true)
		devs[i].connect()
	}
	var dropped atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range pollers {
		p, _ := handshakePoll(t, r.URL, 4, url.Values{"clientId": {fmt.Sprint("poll-", i)}})
		joinPoll(t, p)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, body := p.get()
				if code != http.StatusOK {
					dropped.Add(1)
					return
				}
				if strings.Contains(body, "2") && p.postText("3") != http.StatusOK {
					dropped.Add(1)
					return
				}
			}
		}()
	}
	start := time.Now()
	deadline := time.NewTimer(pings * interval)
	defer deadline.Stop()
	select {
	case <-deadline.C:
	case <-anyClosed(devs):
	}
	for i, d := range devs {
		if d.isClosed(0) {
			t.Errorf("websocket device %d dropped after %s", i, time.Since(start).Round(time.Millisecond))
		}
	}
	close(stop)
	if n := r.Relay.Stats().Devices; n != websockets+pollers {
		t.Errorf("%d devices connected, want %d", n, websockets+pollers)
	}
	// Polls still open return with the engine's next ping.
	wg.Wait()
	if n := dropped.Load(); n > 0 {
		t.Errorf("%d polling devices dropped", n)
	}
}

// anyClosed is closed when any of devs is.
func anyClosed(devs []*rawWS) <-chan struct{} {
	out := make(chan struct{})
	var once sync.Once
	for _, d := range devs {
		go func() {
			select {
			case <-d.closed:
				once.Do(func() { close(out) })
			case <-out:
			}
		}()
	}
	return out
}

// peerOf returns the peer of device id, "" when it has none.
func peerOf(r *server.Relay, id string) string {
	for _, d := range r.Devices() {
		if d.ID == id {
			return d.Peer
		}
	}
	return ""
}

package hostile_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	ws "github.com/gorilla/websocket"

	"github.com/p2prelay/p2prelay/internal/testkit"
	"github.com/p2prelay/p2prelay/server/socketio"
)

// floods are 2 MB payloads of empty Engine.IO packets, as the probe sent
// them: about a million NOOPs in Engine.IO 4, 700,000 in Engine.IO 3's
// "len:packet" framing.
var floods = map[int][]byte{
	4: bytes.Repeat([]byte("6\x1e"), 1<<20),
	3: bytes.Repeat([]byte("1:6"), 700_000),
}

// onlyReader hides a body's length, so that the client sends it chunked.
type onlyReader struct{ io.Reader }

// gone reports whether the relay forgot a polling session.
func gone(p *rawPoll) bool {
	code, _ := p.get()
	return code == http.StatusBadRequest
}

// Case 1. A 2 MB POST of empty packets costs the relay about what it
// reads: from a session that has not joined, no more than the 16 KiB it
// may send before admission (the body is refused unread, or read no
// further); from a device, the body and the 1,000 packets a payload may
// hold, each handed on before the next is decoded. The library's decoder
// held about 380 bytes per byte. Either session is closed; the relay
// keeps serving.
func TestPollingPayloadOfEmptyPackets(t *testing.T) {
	r := testkit.StartRelay(t, socketio.ServiceConfig{})
	base := liveBytes()
	for _, eio := range []int{4, 3} {
		flood := floods[eio]
		for _, tc := range []struct {
			name    string
			joined  bool
			chunked bool
			budget  int64 // bytes the relay may allocate for the POST
		}{
			{"unjoined, with its length", false, false, 1 << 20},
			{"unjoined, chunked", false, true, 1 << 20},
			// The library reads the body into a buffer it grows by
			// doubling: 4 to 8 bytes a byte, whatever decodes it.
			{"a device", true, false, 24 << 20},
		} {
			t.Run(fmt.Sprintf("EIO%d/%s", eio, tc.name), func(t *testing.T) {
				q := url.Values{}
				if tc.joined {
					q.Set("clientId", fmt.Sprintf("flooder-%d", eio))
				}
				p, _ := handshakePoll(t, r.URL, eio, q)
				if tc.joined {
					joinPoll(t, p)
				}
				var body io.Reader = bytes.NewReader(flood)
				if tc.chunked {
					body = onlyReader{body}
				}
				before := allocated()
				code := p.post(body, "text/plain;charset=UTF-8")
				spent := allocated() - before
				t.Logf("%d bytes POSTed: answered %d, the relay allocated %s (%.2f bytes a byte)", len(flood), code, kib(spent), float64(spent)/float64(len(flood)))
				if spent > tc.budget {
					t.Errorf("allocated %s for the POST, budget %s", kib(spent), kib(tc.budget))
				}
				if !eventually(wait, func() bool { return gone(p) }) {
					t.Errorf("the session is still open")
				}
			})
		}
	}
	testkit.Dial(t, r.URL, "after-the-floods")
	if left := liveBytes() - base; left > 2<<20 {
		t.Errorf("%s still held after the floods", kib(left))
	}
}

// joinPoll connects a polling session to the default namespace and waits
// until the relay accepts it.
func joinPoll(t *testing.T, p *rawPoll) {
	t.Helper()
	if p.eio == 4 {
		if code := p.postText("40"); code != http.StatusOK {
			t.Fatalf("CONNECT: %d", code)
		}
	}
	p.getUntil("40")
}

// binaryHeader is a socket.io binary event announcing one attachment, with
// json of n bytes besides.
func binaryHeader(n int) string {
	return `451-["x",{"_placeholder":true,"num":0},"` + strings.Repeat("a", n) + `"]`
}

// Case 2. Before a connection is admitted, a binary packet is refused
// before anything of it is decoded, and no more of it is read than the
// 16 KiB a connection may send before admission: nothing is held for the
// attachments it announced. With or without a CONNECT first (refused
// without an id), the connection is closed at once.
func TestBinaryBeforeAdmission(t *testing.T) {
	const conns = 10
	r := testkit.StartRelay(t, socketio.ServiceConfig{})
	base := liveBytes()
	for _, tc := range []struct {
		name  string
		first string // sent before the binary packet
		size  int
	}{
		{"2 MB header, no CONNECT", "", 2 << 20},
		{"2 MB header after a CONNECT without an id", "40", 2 << 20},
		{"small header", "", 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frame := []byte(binaryHeader(tc.size))
			before := allocated()
			var wg sync.WaitGroup
			devs := make([]*rawWS, conns)
			for i := range devs {
				devs[i] = dialWS(t, r.URL, 4, nil, false)
			}
			start := time.Now()
			for _, d := range devs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if tc.first != "" {
						_ = d.write(ws.TextMessage, []byte(tc.first))
					}
					_ = d.write(ws.TextMessage, frame)
				}()
			}
			for i, d := range devs {
				if !d.isClosed(wait) {
					t.Fatalf("connection %d still open", i)
				}
			}
			wg.Wait()
			spent := allocated() - before
			t.Logf("%d connections closed within %s; the relay allocated %s for each", conns, time.Since(start).Round(time.Millisecond), kib(spent/conns))
			if spent/conns > 256<<10 {
				t.Errorf("allocated %s a connection", kib(spent/conns))
			}
		})
	}
	if !eventually(wait, func() bool { return r.IO.Engine().ClientsCount() == 0 }) {
		t.Fatalf("%d sessions left", r.IO.Engine().ClientsCount())
	}
	if left := liveBytes() - base; left > 1<<20 {
		t.Errorf("%s held after they left", kib(left))
	}
}

// Case 2, after admission. A device that announces attachments and does
// not send them is closed within the ping timeout; one that sends them is
// relayed.
func TestMissingAttachments(t *testing.T) {
	const pingTimeout = 300 * time.Millisecond
	r := testkit.StartRelay(t, socketio.ServiceConfig{PingInterval: time.Second, PingTimeout: pingTimeout})
	a := dialWS(t, r.URL, 4, url.Values{"clientId": {"A"}}, true)
	a.connect()
	b := dialWS(t, r.URL, 4, url.Values{"clientId": {"B"}}, true)
	b.connect()
	pairRaw(t, a, b, "B", "A")

	a.send(`451-["P2P_EMIT",{"targetClientId":"B","event":"bin","args":[{"_placeholder":true,"num":0}]}]`)
	if err := a.write(ws.BinaryMessage, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	b.next(func(s string) bool { return strings.HasPrefix(s, `451-["bin"`) })

	start := time.Now()
	a.send(`451-["P2P_EMIT",{"targetClientId":"B","event":"bin","args":[{"_placeholder":true,"num":0}]}]`)
	if !a.isClosed(pingTimeout + 2*time.Second) {
		t.Fatal("a device that owes an attachment is still connected")
	}
	t.Logf("closed %s after announcing an attachment it did not send", time.Since(start).Round(time.Millisecond))
	if b.isClosed(0) {
		t.Fatal("its peer was closed")
	}
}

// pairRaw makes a ask b to pair (by id bID) and b accept through the ack.
func pairRaw(t *testing.T, a, b *rawWS, bID, aID string) {
	t.Helper()
	a.send(`420["P2P_REGISTER","` + bID + `"]`)
	ask := regexp.MustCompile(`^42(\d+)\["P2P_REGISTER","` + regexp.QuoteMeta(aID) + `"\]$`)
	m := ask.FindStringSubmatch(b.next(ask.MatchString))
	b.send("43" + m[1] + "[true]")
	if got := a.next(func(s string) bool { return strings.HasPrefix(s, "430") }); got != "430[true]" {
		t.Fatalf("P2P_REGISTER answered %q", got)
	}
}

// Case 3. Invalid UTF-8 in what a device sends its peer (arguments, ack
// answers, raw bytes in a websocket text frame) reaches the peer as valid
// UTF-8, bad bytes as U+FFFD, over websocket and polling; valid text,
// lone surrogate escapes included, passes byte for byte. The stock
// JavaScript clients as the peer: compat/test/hostile.test.mjs.
func TestInvalidUTF8NeverReachesThePeer(t *testing.T) {
	r := testkit.StartRelay(t, socketio.ServiceConfig{})
	a := dialWS(t, r.URL, 4, url.Values{"clientId": {"A"}}, true)
	a.connect()
	b := dialWS(t, r.URL, 4, url.Values{"clientId": {"B"}}, true)
	b.connect()
	pairRaw(t, a, b, "B", "A")

	valid := func(s string) {
		t.Helper()
		if !utf8.ValidString(s) {
			t.Fatalf("the peer got invalid UTF-8: %q", s)
		}
	}
	a.send("42[\"P2P_EMIT\",{\"targetClientId\":\"B\",\"event\":\"bad\",\"args\":[\"a\xffb\",{\"k\xfe\":\"\xc3\"},\"\\ud83d\"]}]")
	got := b.next(func(s string) bool { return strings.HasPrefix(s, `42["bad"`) })
	valid(got)
	if want := "42[\"bad\",\"a\ufffdb\",{\"k\ufffd\":\"\ufffd\"},\"\ufffd\"]"; got != want {
		// The library's decoder reads the lone surrogate of a bad packet
		// as U+FFFD too; a valid packet keeps it (below).
		t.Fatalf("the peer got %q, want %q", got, want)
	}
	a.send(`42["P2P_EMIT",{"targetClientId":"B","event":"good","args":["é\ud83d",1e400]}]`)
	if got := b.next(func(s string) bool { return strings.HasPrefix(s, `42["good"`) }); got != `42["good","é\ud83d",1e400]` {
		t.Fatalf("valid text changed on its way: %q", got)
	}

	// An ack answer with bad bytes, back to the sender.
	a.send(`421["P2P_EMIT_ACKNOWLEDGE",{"targetClientId":"B","event":"q","args":[]}]`)
	ask := regexp.MustCompile(`^42(\d+)\["q"\]$`)
	m := ask.FindStringSubmatch(b.next(ask.MatchString))
	b.send("43" + m[1] + "[\"\xff\xff\"]")
	answer := a.next(func(s string) bool { return strings.HasPrefix(s, "431") })
	valid(answer)

	// A polling peer reads a response body of valid UTF-8.
	c, _ := handshakePoll(t, r.URL, 4, url.Values{"clientId": {"C"}})
	joinPoll(t, c)
	d := dialWS(t, r.URL, 4, url.Values{"clientId": {"D"}}, true)
	d.connect()
	d.send(`420["P2P_REGISTER","C"]`)
	body := c.getUntil(`"P2P_REGISTER","D"`)
	m = regexp.MustCompile(`42(\d+)\["P2P_REGISTER","D"\]`).FindStringSubmatch(body)
	c.postText("43" + m[1] + "[true]")
	d.next(func(s string) bool { return s == "430[true]" })
	d.send("42[\"P2P_EMIT\",{\"targetClientId\":\"C\",\"event\":\"bad\",\"args\":[\"\xed\xa0\xbd\xff\"]}]")
	body = c.getUntil(`"bad"`)
	valid(body)
	if b.isClosed(0) || d.isClosed(0) {
		t.Fatal("a peer was closed")
	}
}

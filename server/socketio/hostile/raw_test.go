package hostile_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/p2prelay/p2prelay/internal/testkit"
)

// wait is how long a test waits for something that should happen.
const wait = testkit.Wait

// rawWS is a device played by hand over a raw Engine.IO websocket: what a
// hostile client, or a minimal honest one, writes on the wire.
type rawWS struct {
	t      testing.TB
	c      *ws.Conn
	eio    int
	wmu    sync.Mutex // guards writes on c
	frames chan []byte
	big    atomic.Int64 // frames too large to keep, dropped
	closed chan struct{}

	mu     sync.Mutex     // guards counts
	counts map[string]int // frames received, by their first bytes
	pong   bool           // answer the engine's pings (Engine.IO 4)
}

// countKey is how many first bytes of a frame counts keeps it by.
const countKey = 40

// count returns how many frames came that start with prefix.
func (d *rawWS) count(prefix string) int {
	return d.countIf(func(head string) bool { return strings.HasPrefix(head, prefix) })
}

// countIf returns how many frames came whose first countKey bytes match.
func (d *rawWS) countIf(match func(head string) bool) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for k, c := range d.counts {
		if match(k) {
			n += c
		}
	}
	return n
}

// maxKept is the largest frame a rawWS keeps for the test to read; larger
// ones are counted and dropped, so that a flood does not pile up in the
// test.
const maxKept = 4 << 10

// wsURL returns the websocket URL of relay for Engine.IO eio with query.
func wsURL(relay string, eio int, query url.Values) string {
	q := url.Values{"EIO": {fmt.Sprint(eio)}, "transport": {"websocket"}}
	for k, v := range query {
		q[k] = v
	}
	return "ws" + strings.TrimPrefix(relay, "http") + "/socket.io/?" + q.Encode()
}

// dialWS opens a websocket Engine.IO session and reads its OPEN packet.
// Frames the relay sends later go to frames (the oldest are dropped when
// nobody reads, and large ones at once: maxKept); pings are answered when
// pong is set.
func dialWS(t testing.TB, relay string, eio int, query url.Values, pong bool) *rawWS {
	t.Helper()
	c, _, err := ws.DefaultDialer.Dial(wsURL(relay, eio, query), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return startWS(t, c, eio, pong)
}

func startWS(t testing.TB, c *ws.Conn, eio int, pong bool) *rawWS {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(wait))
	_, open, err := c.ReadMessage()
	if err != nil || len(open) == 0 || open[0] != '0' {
		t.Fatalf("open packet: %q, %v", open, err)
	}
	_ = c.SetReadDeadline(time.Time{})
	d := &rawWS{t: t, c: c, eio: eio, frames: make(chan []byte, 256), closed: make(chan struct{}), pong: pong, counts: map[string]int{}}
	go d.read()
	t.Cleanup(func() { _ = c.Close() })
	return d
}

func (d *rawWS) read() {
	defer close(d.closed)
	for {
		_, b, err := d.c.ReadMessage()
		if err != nil {
			return
		}
		if d.pong && d.eio == 4 && string(b) == "2" {
			if d.write(ws.TextMessage, []byte("3")) != nil {
				return
			}
			continue
		}
		d.mu.Lock()
		d.counts[string(b[:min(len(b), countKey)])]++
		d.mu.Unlock()
		if len(b) > maxKept {
			d.big.Add(1)
			continue
		}
		select {
		case d.frames <- b:
		default:
			select { // full: drop the oldest
			case <-d.frames:
			default:
			}
			select {
			case d.frames <- b:
			default:
			}
		}
	}
}

func (d *rawWS) write(op int, b []byte) error {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	return d.c.WriteMessage(op, b)
}

// send writes a text frame.
func (d *rawWS) send(s string) {
	d.t.Helper()
	if err := d.write(ws.TextMessage, []byte(s)); err != nil {
		d.t.Fatalf("send %.40q: %v", s, err)
	}
}

// next returns the next frame that match accepts, failing the test after
// wait.
func (d *rawWS) next(match func(string) bool) string {
	d.t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case b := <-d.frames:
			if match(string(b)) {
				return string(b)
			}
		case <-d.closed:
			d.t.Fatalf("connection closed while waiting")
		case <-timer.C:
			d.t.Fatalf("no matching frame within %s", wait)
		}
	}
}

// connect joins the default namespace (Engine.IO 4) and waits until the
// relay accepts the device.
func (d *rawWS) connect() {
	d.t.Helper()
	d.send("40")
	if got := d.next(func(s string) bool { return strings.HasPrefix(s, "40") || strings.HasPrefix(s, "44") }); !strings.HasPrefix(got, "40") {
		d.t.Fatalf("connect answered %q", got)
	}
}

// isClosed reports whether the relay closed the connection within d.
func (d *rawWS) isClosed(within time.Duration) bool {
	select {
	case <-d.closed:
		return true
	default:
	}
	t := time.NewTimer(within)
	defer t.Stop()
	select {
	case <-d.closed:
		return true
	case <-t.C:
		return false
	}
}

// rawPoll is a device played by hand over raw Engine.IO long-polling.
type rawPoll struct {
	t    testing.TB
	base string // the session's URL
	eio  int
	hc   *http.Client
}

// handshakePoll opens a polling session and returns it with what the
// handshake answered.
func handshakePoll(t testing.TB, relay string, eio int, query url.Values) (*rawPoll, string) {
	t.Helper()
	q := url.Values{"EIO": {fmt.Sprint(eio)}, "transport": {"polling"}}
	for k, v := range query {
		q[k] = v
	}
	hc := &http.Client{Timeout: wait, Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	res, err := hc.Get(relay + "/socket.io/?" + q.Encode())
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	i := bytes.Index(body, []byte(`"sid":"`))
	if res.StatusCode != http.StatusOK || i < 0 {
		t.Fatalf("handshake: %d %q", res.StatusCode, body)
	}
	sid := body[i+7:]
	sid = sid[:bytes.IndexByte(sid, '"')]
	q.Set("sid", string(sid))
	return &rawPoll{t: t, base: relay + "/socket.io/?" + q.Encode(), eio: eio, hc: hc}, string(body)
}

// post sends a payload and returns the status code (0: no answer).
func (p *rawPoll) post(body io.Reader, contentType string) int {
	p.t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.base, body)
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	res, err := p.hc.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	return res.StatusCode
}

// postText sends a text payload.
func (p *rawPoll) postText(s string) int {
	return p.post(strings.NewReader(s), "text/plain;charset=UTF-8")
}

// get polls once and returns the status and body.
func (p *rawPoll) get() (int, string) {
	p.t.Helper()
	res, err := p.hc.Get(p.base)
	if err != nil {
		return 0, ""
	}
	b, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	return res.StatusCode, string(b)
}

// getUntil polls until a payload contains want, failing after wait.
func (p *rawPoll) getUntil(want string) string {
	p.t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		code, body := p.get()
		if code != http.StatusOK {
			p.t.Fatalf("poll: %d %q", code, body)
		}
		if strings.Contains(body, want) {
			return body
		}
	}
	p.t.Fatalf("no %q within %s", want, wait)
	return ""
}

// liveBytes returns the live heap and goroutine stacks after a full
// collection: what the process holds.
func liveBytes() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc + m.StackInuse)
}

// allocated returns the bytes allocated since the process started.
func allocated() int64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// eventually checks cond every 10ms until it holds or within passes, and
// reports whether it held: for state only the relay can see.
func eventually(within time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			return cond()
		case <-tick.C:
		}
	}
	return true
}

// rawTCP opens a TCP connection to relay.
func rawTCP(t testing.TB, relay string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(relay, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// kib formats bytes in KiB.
func kib(n int64) string { return fmt.Sprintf("%.1f KiB", float64(n)/1024) }

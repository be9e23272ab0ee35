package peer_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2prelay/p2prelay/internal/testkit"
	"github.com/p2prelay/p2prelay/peer"
	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server"
	"github.com/p2prelay/p2prelay/server/socketio"
)

// device is a Peer under test with what it received.
type device struct {
	*peer.Peer
	notices chan peer.Notice
	events  chan peer.Event
}

// dial connects a peer to relayURL as id; mods adjust its Config. It is
// closed when the test ends.
func dial(t *testing.T, relayURL, id string, mods ...func(*peer.Config)) *device {
	t.Helper()
	d, err := tryDial(t, relayURL, id, mods...)
	if err != nil {
		t.Fatalf("dial %s: %v", id, err)
	}
	return d
}

func tryDial(t *testing.T, relayURL, id string, mods ...func(*peer.Config)) (*device, error) {
	t.Helper()
	d := &device{notices: make(chan peer.Notice, 256), events: make(chan peer.Event, 256)}
	cfg := peer.Config{
		URL:               relayURL,
		ID:                id,
		Timeout:           testkit.Wait,
		ReconnectDelay:    20 * time.Millisecond,
		ReconnectDelayMax: 200 * time.Millisecond,
		PairRetry:         20 * time.Millisecond,
		OnEvent:           func(ev peer.Event) { d.events <- ev },
		OnNotice:          func(n peer.Notice) { d.notices <- n },
	}
	for _, m := range mods {
		m(&cfg)
	}
	p, err := peer.Dial(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	d.Peer = p
	t.Cleanup(func() {
		_ = p.Close()
		select {
		case <-p.Done():
		case <-time.After(testkit.Wait):
			t.Errorf("%s: Done not closed after Close", id)
		}
	})
	return d, nil
}

// notice waits for the next notice of kind, skipping others.
func (d *device) notice(t *testing.T, kind peer.NoticeKind) peer.Notice {
	t.Helper()
	timeout := time.After(testkit.Wait)
	var skipped []string
	for {
		select {
		case n := <-d.notices:
			if n.Kind == kind {
				return n
			}
			skipped = append(skipped, fmt.Sprintf("%s(%s)", n.Kind, n.Peer))
		case <-timeout:
			t.Fatalf("%s: no %s notice within %s; got %v", d.ID(), kind, testkit.Wait, skipped)
		}
	}
}

// nextNotice waits for the very next notice.
func (d *device) nextNotice(t *testing.T) peer.Notice {
	t.Helper()
	select {
	case n := <-d.notices:
		return n
	case <-time.After(testkit.Wait):
		t.Fatalf("%s: no notice within %s", d.ID(), testkit.Wait)
	}
	return peer.Notice{}
}

// event waits for the next event.
func (d *device) event(t *testing.T) peer.Event {
	t.Helper()
	select {
	case ev := <-d.events:
		return ev
	case <-time.After(testkit.Wait):
		t.Fatalf("%s: no event within %s", d.ID(), testkit.Wait)
	}
	return peer.Event{}
}

// pair pairs a with b and waits until both know.
func pair(t *testing.T, a, b *device) {
	t.Helper()
	if err := a.Pair(context.Background(), b.ID()); err != nil {
		t.Fatalf("%s pair with %s: %v", a.ID(), b.ID(), err)
	}
	if n := a.notice(t, peer.Paired); n.Peer != b.ID() {
		t.Fatalf("%s paired with %q, want %q", a.ID(), n.Peer, b.ID())
	}
	if n := b.notice(t, peer.Paired); n.Peer != a.ID() {
		t.Fatalf("%s paired with %q, want %q", b.ID(), n.Peer, a.ID())
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func start(t *testing.T, cfg server.Config) *testkit.Relay {
	t.Helper()
	return testkit.StartRelay(t, socketio.ServiceConfig{Relay: cfg})
}

// startWatched starts a relay whose events (server.Event) come on the
// returned channel; cfg.Observer is replaced.
func startWatched(t *testing.T, cfg socketio.ServiceConfig) (*testkit.Relay, <-chan server.Event) {
	t.Helper()
	events := make(chan server.Event, 1024)
	cfg.Relay.Observer = server.ObserverFunc(func(e server.Event) {
		select {
		case events <- e:
		default:
			t.Errorf("relay event %s dropped: the test does not read them", e.Kind)
		}
	})
	return testkit.StartRelay(t, cfg), events
}

// relayEvent waits for the relay's next event of kind about device id.
func relayEvent(t *testing.T, events <-chan server.Event, kind server.EventKind, id string) server.Event {
	t.Helper()
	timeout := time.After(testkit.Wait)
	for {
		select {
		case e := <-events:
			if e.Kind == kind && e.ID == id {
				return e
			}
		case <-timeout:
			t.Fatalf("the relay said no %s about %s within %s", kind, id, testkit.Wait)
		}
	}
}

// refusal waits until the relay refuses a pairing request of id with
// code, skipping other events.
func refusal(t *testing.T, events <-chan server.Event, id string, code protocol.Code) {
	t.Helper()
	timeout := time.After(testkit.Wait)
	for {
		select {
		case e := <-events:
			if e.Kind == server.PairRefused && e.ID == id && e.Code == code {
				return
			}
		case <-timeout:
			t.Fatalf("the relay did not refuse %s with %s within %s", id, code, testkit.Wait)
		}
	}
}

// quiet checks that d got no notice and no event other than a marker its
// peer sends now: the relay delivers in order and handlers run in order,
// so anything sent to d before the marker has been handled by then.
func (d *device) quiet(t *testing.T, peer *device) {
	t.Helper()
	if err := peer.Emit(context.Background(), "marker"); err != nil {
		t.Fatalf("%s: marker: %v", peer.ID(), err)
	}
	if ev := d.event(t); ev.Name != "marker" {
		t.Fatalf("%s: unexpected event %q %v", d.ID(), ev.Name, ev.Args)
	}
	select {
	case n := <-d.notices:
		t.Fatalf("%s: unexpected notice %s(%s) %s", d.ID(), n.Kind, n.Peer, n.Reason)
	default:
	}
}

// proxy forwards TCP connections to a relay, and can cut them to play a
// network failure, and refuse new ones to keep a device away.
type proxy struct {
	ln     net.Listener
	target string
	down   atomic.Bool // new connections are closed at once

	mu    sync.Mutex // guards links
	links []*link
	wg    sync.WaitGroup
}

// link is one forwarded connection: the device's side and the relay's.
type link struct {
	down, up net.Conn
	frozen   bool // guarded by proxy.mu: leave up open when down closes
}

// startProxy forwards 127.0.0.1:0 to target (host:port) until the test ends.
func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &proxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		for _, l := range p.links {
			_ = l.down.Close()
			_ = l.up.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.down.Load() {
			_ = c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		l := &link{down: c, up: up}
		p.mu.Lock()
		p.links = append(p.links, l)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(l, up, c)
		go p.pipe(l, c, up)
	}
}

// pipe copies src to dst; when either ends it closes the link, except the
// relay's side of a frozen link.
func (p *proxy) pipe(l *link, dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	p.mu.Lock()
	frozen := l.frozen
	p.mu.Unlock()
	_ = l.down.Close()
	if !frozen {
		_ = l.up.Close()
	}
}

// cut closes every device-side connection; with keepUpstream the relay's
// side stays open and silent, so the relay notices only by its heartbeat.
func (p *proxy) cut(keepUpstream bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.links {
		l.frozen = keepUpstream
		_ = l.down.Close()
		if !keepUpstream {
			_ = l.up.Close()
		}
	}
}

// isTimeout reports whether err is a TIMEOUT by code.
func isTimeout(err error) bool { return errors.Is(err, peer.ErrTimeout) }

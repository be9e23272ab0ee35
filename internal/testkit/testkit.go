// Package testkit starts real relays on loopback and drives them with raw
// socket.io devices, for the integration tests of every package.
package testkit

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	client "github.com/zishang520/socket.io/clients/socket/v3"
	sio "github.com/zishang520/socket.io/servers/socket/v3"
	siolog "github.com/zishang520/socket.io/v3/pkg/log"

	"github.com/p2prelay/p2prelay/internal/sioclient"
	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server/socketio"
)

// SIODEBUG=1 DEBUG='socket.io:*' go test ./... turns on the socket.io
// library's own debug output in every test that starts a relay here, for
// chasing wire-level problems.
func init() {
	if os.Getenv("SIODEBUG") != "" {
		siolog.DEBUG.Store(true)
	}
}

// Wait is how long a test waits for something that should happen.
const Wait = 5 * time.Second

// Relay is a relay serving on 127.0.0.1 for one test.
type Relay struct {
	*socketio.Service
	URL string // http://127.0.0.1:PORT
}

// StartRelay serves a relay on 127.0.0.1:0 until the test ends.
func StartRelay(t testing.TB, cfg socketio.ServiceConfig) *Relay {
	t.Helper()
	svc, err := socketio.NewService(cfg)
	if err != nil {
		t.Fatalf("NewService: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), Wait)
		defer cancel()
		_ = svc.Shutdown(ctx)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-ctx.Done():
			t.Errorf("relay did not stop")
		}
	})
	return &Relay{Service: svc, URL: "http://" + ln.Addr().String()}
}

// Event is one event a Device received.
type Event struct {
	Name string
	Args []any
	Ack  func(args ...any) // nil when the relay wants no answer
}

// Device is a raw socket.io client connected to a relay: it does nothing by
// itself, so tests can play either protocol generation by hand.
type Device struct {
	t      testing.TB
	Socket *client.Socket

	mu     sync.Mutex // guards queue
	queue  []Event
	notify chan struct{}
	closed chan struct{}
	once   sync.Once
}

// DialOptions says how a Device connects.
type DialOptions struct {
	Query      url.Values
	Auth       map[string]any
	Transports []string // "polling", "websocket"; default websocket only
}

// Dial connects a generation-2 device (?clientId=id) and waits until the
// relay accepted it.
func Dial(t testing.TB, relayURL, id string) *Device {
	t.Helper()
	return DialWith(t, relayURL, DialOptions{Query: url.Values{protocol.QueryClientID: {id}}})
}

// DialGen1 connects a generation-1 device (?deviceId=id).
func DialGen1(t testing.TB, relayURL, id string) *Device {
	t.Helper()
	return DialWith(t, relayURL, DialOptions{Query: url.Values{protocol.QueryDeviceID: {id}}})
}

// DialWith connects with explicit options and waits until accepted.
func DialWith(t testing.TB, relayURL string, o DialOptions) *Device {
	t.Helper()
	d, err := TryDial(t, relayURL, o)
	if err != nil {
		t.Fatalf("dial %v: %v", o.Query, err)
	}
	return d
}

// TryDial connects and returns the connect error the relay answered, if any.
// A device the relay accepted is closed when the test ends.
func TryDial(t testing.TB, relayURL string, o DialOptions) (*Device, error) {
	t.Helper()
	d, err := Connect(t, relayURL, o)
	if err != nil {
		return nil, err
	}
	t.Cleanup(d.Close)
	return d, nil
}

// Connect is TryDial without the cleanup: the caller must Close the
// device. t only receives the device's test failures.
func Connect(t testing.TB, relayURL string, o DialOptions) (*Device, error) {
	opts := client.DefaultOptions()
	opts.SetQuery(o.Query)
	if o.Auth != nil {
		opts.SetAuth(o.Auth)
	}
	if len(o.Transports) == 0 {
		// The Go client can lose packets while it upgrades from polling to
		// websocket, so devices use websocket alone unless a test asks.
		o.Transports = []string{"websocket"}
	}
	opts.SetTransports(sioclient.Transports(o.Transports))
	d := &Device{t: t, notify: make(chan struct{}, 1), closed: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	s, err := sioclient.Connect(ctx, relayURL, sioclient.Options{
		Client:         opts,
		AttemptTimeout: time.Second,
		Setup: func(s *client.Socket) {
			s.OnAny(func(args ...any) { d.push(args) })
			_ = s.On("disconnect", func(...any) { d.once.Do(func() { close(d.closed) }) })
		},
	})
	if err != nil {
		return nil, err
	}
	d.Socket = s
	return d, nil
}

func (d *Device) push(args []any) {
	if len(args) == 0 {
		return
	}
	name, _ := args[0].(string)
	rest, fn := protocol.SplitAck(args[1:])
	ev := Event{Name: name, Args: rest}
	if fn != nil {
		ev.Ack = func(vals ...any) { fn(vals, nil) }
	}
	d.mu.Lock()
	d.queue = append(d.queue, ev)
	d.mu.Unlock()
	select {
	case d.notify <- struct{}{}:
	default:
	}
}

// Close disconnects the device.
// Close leaves the relay for good, as an explicit disconnect does: the
// device says P2P_LEAVE and waits for the answer, so its peer has been told
// and its id is free when Close returns. (The Go socket.io client can lose
// the DISCONNECT packet it sends as it closes, which the relay would take
// for a network drop.)
func (d *Device) Close() {
	if d.Socket.Connected() {
		_, _ = d.TryRequest(protocol.EventLeave)
	}
	d.Socket.Close()
}

// Drop closes the device's transport without a word, as a network drop
// does: the relay keeps a paired device away for its resume window.
func (d *Device) Drop() {
	if e := d.Socket.Io().Engine(); e != nil {
		e.Close()
	}
	d.Socket.Close()
}

// Closed is closed when the relay disconnects the device.
func (d *Device) Closed() <-chan struct{} { return d.closed }

// Emit sends an event without an ack.
func (d *Device) Emit(event string, args ...any) {
	d.t.Helper()
	if err := d.Socket.Emit(event, args...); err != nil {
		d.t.Fatalf("emit %s: %v", event, err)
	}
}

// Request sends an event with an ack and returns the ack's values.
func (d *Device) Request(event string, args ...any) []any {
	d.t.Helper()
	got, err := d.TryRequest(event, args...)
	if err != nil {
		d.t.Fatalf("%s: %v", event, err)
	}
	return got
}

// TryRequest is Request that returns an error when no ack comes in time.
func (d *Device) TryRequest(event string, args ...any) ([]any, error) {
	ch := make(chan []any, 1)
	all := append(append([]any{}, args...), sio.Ack(func(vals []any, _ error) { ch <- vals }))
	if err := d.Socket.Emit(event, all...); err != nil {
		return nil, err
	}
	select {
	case v := <-ch:
		return v, nil
	case <-time.After(Wait):
		return nil, fmt.Errorf("no ack for %s within %s", event, Wait)
	}
}

// Next waits for the next event named name, dropping nothing: events with
// other names stay queued for later calls.
func (d *Device) Next(name string) Event {
	d.t.Helper()
	ev, ok := d.Await(name, Wait)
	if !ok {
		d.t.Fatalf("no %s event within %s; queued: %v", name, Wait, d.Names())
	}
	return ev
}

// Await waits up to wait for an event named name.
func (d *Device) Await(name string, wait time.Duration) (Event, bool) {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		d.mu.Lock()
		for i, ev := range d.queue {
			if ev.Name == name {
				d.queue = append(d.queue[:i], d.queue[i+1:]...)
				d.mu.Unlock()
				return ev, true
			}
		}
		d.mu.Unlock()
		select {
		case <-d.notify:
		case <-deadline.C:
			return Event{}, false
		}
	}
}

// Names lists the names of the queued events.
func (d *Device) Names() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, len(d.queue))
	for i, ev := range d.queue {
		out[i] = ev.Name
	}
	return out
}

// ServerError waits for a SERVER_ERROR and returns its code.
func (d *Device) ServerError() *protocol.Error {
	d.t.Helper()
	ev := d.Next(protocol.EventServerError)
	if len(ev.Args) != 1 {
		d.t.Fatalf("SERVER_ERROR with %d args, want 1", len(ev.Args))
	}
	text, ok := ev.Args[0].(string)
	if !ok {
		d.t.Fatalf("SERVER_ERROR arg is %T, want string", ev.Args[0])
	}
	return protocol.ParseServerError(text)
}

// NoEvent fails the test if an event named name arrives within wait.
func (d *Device) NoEvent(name string, wait time.Duration) {
	d.t.Helper()
	if ev, ok := d.Await(name, wait); ok {
		d.t.Fatalf("unexpected %s event: %v", name, ev.Args)
	}
}

// Pair makes src ask to pair with dst; dst, a generation-2 device played
// by hand, accepts through the ack. It fails the test unless they pair.
func Pair(t testing.TB, src, dst *Device, dstID string, srcID string) {
	t.Helper()
	res := make(chan []any, 1)
	go func() {
		v, _ := src.TryRequest(protocol.EventRegister, dstID)
		res <- v
	}()
	ask := dst.Next(protocol.EventRegister)
	if len(ask.Args) != 1 || ask.Args[0] != srcID || ask.Ack == nil {
		t.Fatalf("target got P2P_REGISTER %v (ack %v), want (%q, ack)", ask.Args, ask.Ack != nil, srcID)
	}
	ask.Ack(true)
	if v := <-res; len(v) != 1 || v[0] != true {
		t.Fatalf("P2P_REGISTER answered %v, want [true]", v)
	}
}

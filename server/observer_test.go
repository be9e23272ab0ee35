package server_test

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2prelay/p2prelay/internal/testkit"
	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server"
	"github.com/p2prelay/p2prelay/server/relaytest"
)

type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) OnEvent(e server.Event) {
	r.mu.Lock()
	r.events = append(r.events, relaytest.EventText(e))
	r.mu.Unlock()
}

// await waits until the recorded events end with events that begin with
// want, in order.
func (r *recorder) await(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.Now().Add(testkit.Wait)
	for {
		r.mu.Lock()
		got := append([]string(nil), r.events...)
		r.mu.Unlock()
		if endsWith(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("events:\n%s\nwant them to end with:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestObserverSeesEventsInOrder(t *testing.T) {
	rec := &recorder{}
	r := start(t, server.Config{Observer: rec, DuplicateID: server.DuplicateTakeover})
	a := testkit.Dial(t, r.URL, "A")
	b := testkit.Dial(t, r.URL, "B")
	rec.await(t, "device_connected A", "device_connected B")

	res := make(chan []any, 1)
	go func() { res <- a.Request(protocol.EventRegister, "B") }()
	ask := b.Next(protocol.EventRegister)
	rec.await(t, "pair_requested A B")
	ask.Ack(true)
	<-res
	rec.await(t, "pair_requested A B", "pair_created A B")

	// A new connection takes A over: the old one's pair and the old one
	// end before the new one is announced.
	testkit.Dial(t, r.URL, "A")
	rec.await(t, "pair_ended A B (takeover)", "device_disconnected A (taken over)", "device_connected A")

	// A handshake whose source drops is reported refused.
	c := testkit.Dial(t, r.URL, "C")
	go func() { _, _ = c.TryRequest(protocol.EventRegister, "B") }()
	b.Next(protocol.EventRegister)
	c.Close()
	rec.await(t, "pair_refused C B OFFLINE", "device_disconnected C")

	// A polling device that upgrades to websocket is reported. The Go
	// client picks its first transport at random from the two, so dial
	// until one starts on polling.
	for i := 0; ; i++ {
		id := fmt.Sprintf("P%d", i)
		testkit.DialWith(t, r.URL, testkit.DialOptions{Query: url.Values{"clientId": {id}}, Transports: []string{"polling", "websocket"}})
		if d, _ := r.Relay.Store().Get(id); d.Transport == "polling" {
			rec.await(t, "device_updated "+id+" websocket")
			break
		}
		if i == 20 {
			t.Fatal("no device started on polling")
		}
	}
}

func endsWith(got, want []string) bool {
	if len(got) < len(want) {
		return false
	}
	tail := got[len(got)-len(want):]
	for i := range want {
		if !strings.HasPrefix(tail[i], want[i]) {
			return false
		}
	}
	return true
}

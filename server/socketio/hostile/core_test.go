package hostile_test

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/p2prelay/p2prelay/internal/testkit"
	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server"
	"github.com/p2prelay/p2prelay/server/socketio"
)

// Case 9. Ids that display as another id are refused BAD_ID, as a
// device's own id (either generation's query key) and as a target: zero
// width and format characters, bidi controls, separators other than a
// single inner space, combining marks that follow no letter.
func TestLookalikeIDs(t *testing.T) {
	r := testkit.StartRelay(t, socketio.ServiceConfig{})
	a := testkit.Dial(t, r.URL, "kiosk1")
	for name, id := range map[string]string{
		"zero-width space":         "kiosk\u200b1",
		"right-to-left override":   "kiosk\u202e1",
		"left-to-right mark":       "kiosk1\u200e",
		"no-break space":           "kiosk\u00a01",
		"line separator":           "kiosk\u20281",
		"combining mark on digit":  "kiosk1\u0301",
		"leading combining mark":   "\u0301kiosk1",
		"trailing space":           "kiosk1 ",
		"byte order mark":          "\ufeffkiosk1",
		"variation selector":       "kiosk1\ufe0f",
		"invisible Hangul filler":  "kiosk1\u3164",
		"two spaces between words": "kiosk  1",
	} {
		for _, key := range []string{protocol.QueryClientID, protocol.QueryDeviceID} {
			_, err := testkit.TryDial(t, r.URL, testkit.DialOptions{Query: url.Values{key: {id}}})
			if protocol.CodeOf(err) != protocol.CodeBadID {
				t.Errorf("%s as ?%s=: %v, want BAD_ID", name, key, err)
			}
		}
		answer := a.Request(protocol.EventRegister, id)
		if len(answer) != 2 || answer[0] != false || !strings.Contains(fmt.Sprint(answer[1]), "BAD_ID") {
			t.Errorf("%s as a target: %v, want false with BAD_ID", name, answer)
		}
		a.ServerError()
	}
	for _, id := range []string{"Living Room TV", "café", "cafe\u0301", "设备-1", "kiosk-1"} {
		testkit.Dial(t, r.URL, id)
	}
}

// Case 10. A yes that comes after the pairing request ended tells the
// device nothing once it has paired with another meanwhile: the news
// (P2P_DISCONNECT) would end the pair it is in, in its own eyes. Either
// generation, each answering its own way.
func TestLateYes(t *testing.T) {
	const pairTimeout = 200 * time.Millisecond
	r := testkit.StartRelay(t, socketio.ServiceConfig{Relay: server.Config{PairTimeout: pairTimeout}})
	for _, gen := range []int{1, 2} {
		t.Run(fmt.Sprint("gen", gen), func(t *testing.T) {
			a := testkit.Dial(t, r.URL, fmt.Sprint("A", gen))
			cID := fmt.Sprint("C", gen)
			c := testkit.Dial(t, r.URL, cID)
			var b *testkit.Device
			bID := fmt.Sprint("B", gen)
			if gen == 1 {
				b = testkit.DialGen1(t, r.URL, bID)
			} else {
				b = testkit.Dial(t, r.URL, bID)
			}
			// A asks B; B lets the request time out.
			res := make(chan []any, 1)
			go func() { v, _ := a.TryRequest(protocol.EventRegister, bID); res <- v }()
			ask := b.Next(protocol.EventRegister)
			if v := <-res; len(v) == 0 || v[0] != false {
				t.Fatalf("A's request answered %v, want false (TIMEOUT)", v)
			}
			// B pairs with C, then says yes to A.
			testkit.Pair(t, b, c, cID, bID)
			if gen == 1 {
				b.Emit(protocol.EventRegisterSuccess)
			} else {
				ask.Ack(true)
			}
			// B's next request is handled after its late yes: whatever the
			// relay told it about the yes came before the answer.
			status := b.Request(protocol.EventStatus)
			if m, _ := status[0].(map[string]any); m["peer"] != cID {
				t.Fatalf("B's status %v, want paired with C", status)
			}
			for _, name := range b.Names() {
				if name == protocol.EventDisconnect {
					t.Fatalf("B was told %s after its late yes, while paired with C", name)
				}
			}
			b.Emit(protocol.EventEmit, map[string]any{"targetClientId": cID, "event": "still", "args": []any{1}})
			c.Next("still")
		})
	}
}

// Case 11. A device flooding the relay with requests beyond its rate
// limit writes a bounded number of log lines (refusals are logged at
// most 5 at once and 1 a second per device, the rest counted), and
// answers by event beyond it are dropped unanswered.
func TestRefusalLogsAreBounded(t *testing.T) {
	const flood = 20000
	var logs testkit.SyncBuffer
	r := testkit.StartRelay(t, socketio.ServiceConfig{Relay: server.Config{
		Rate: 10, Burst: 10,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}})
	a := dialWS(t, r.URL, 4, url.Values{"clientId": {"A"}}, true)
	a.connect()
	start := time.Now()
	for range flood {
		a.send(`42["NO_SUCH_EVENT"]`)
	}
	// Requests are handled in order: this one's answer comes last.
	a.send(`42999["LIST_CLIENTS"]`)
	a.next(func(s string) bool { return strings.HasPrefix(s, "43999") })
	took := time.Since(start)
	lines := strings.Count(logs.String(), `msg="request refused"`)
	bound := 5 + int(took.Seconds()) + 1
	t.Logf("%d requests refused in %s: %d SERVER_ERROR, %d log lines (bound %d)", flood+1, took.Round(time.Millisecond), a.count(`42["SERVER_ERROR"`), lines, bound)
	if lines > bound {
		t.Errorf("%d refusal log lines for %d refused requests, bound %d", lines, flood, bound)
	}
	// The next refusal logged, once the log's rate allows one, counts
	// those that were not.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), "unlogged_since="); {
		if time.Now().After(deadline) {
			t.Fatalf("the refusals not logged are not counted:\n%.2000s", logs.String())
		}
		a.send(`42["NO_SUCH_EVENT"]`)
		a.next(func(s string) bool { return strings.HasPrefix(s, `42["SERVER_ERROR"`) })
		time.Sleep(50 * time.Millisecond) // the log's rate is per second
	}

	// Pairing answers by event (generation 1), beyond the rate: dropped,
	// told nothing, logged nothing.
	g := dialWS(t, r.URL, 4, url.Values{"deviceId": {"G"}}, true)
	g.connect()
	before := strings.Count(logs.String(), "\n")
	start = time.Now()
	for range flood {
		g.send(`42["P2P_REGISTER_SUCCESS"]`)
	}
	g.send(`42999["LIST_CLIENTS"]`)
	g.next(func(s string) bool { return strings.HasPrefix(s, "43999") })
	took = time.Since(start)
	told := g.count(`42["P2P_DISCONNECT"]`) + g.count(`42["SERVER_ERROR"`)
	logged := strings.Count(logs.String(), "\n") - before
	t.Logf("%d answers by event in %s: told %d times, %d log lines", flood, took.Round(time.Millisecond), told, logged)
	if limit := 10 + 10*int(took.Seconds()+1); told > limit {
		t.Errorf("told %d times about %d answers, limit %d", told, flood, limit)
	}
	if logged > 2 {
		t.Errorf("%d log lines for answers by event", logged)
	}
}

package admin

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// logLines is a slog handler's output, read safely.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logLines) lines(msg string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.buf.String(), "\n") {
		if strings.Contains(line, `msg="`+msg+`"`) {
			out = append(out, line)
		}
	}
	return out
}

func (l *logLines) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

func TestAuthThrottle(t *testing.T) {
	var logs logLines
	a := newAuthThrottle(1, 3, logs.logger())
	now := time.Unix(1000, 0)
	const addr = "192.0.2.7:40000"

	// The burst: three wrong tokens are looked at; the first is logged.
	for i := range 3 {
		if _, ok := a.admit(addr, surfaceSocket, now); !ok {
			t.Fatalf("attempt %d throttled within the burst", i)
		}
		a.refused(addr, surfaceSocket, "wrong admin token", true, now)
	}
	// Then every attempt, from any port of the address and on any surface,
	// is refused unchecked, for about a second.
	for _, from := range []string{addr, "192.0.2.7:40001", "192.0.2.7"} {
		retry, ok := a.admit(from, surfaceHTTP, now)
		if ok || retry <= 0 || retry > time.Second {
			t.Fatalf("admit(%s) after the burst = %v, %v", from, retry, ok)
		}
	}
	if _, ok := a.admit("192.0.2.8:1", surfaceHTTP, now); !ok {
		t.Fatal("another address is throttled too")
	}
	// Missing tokens cost nothing.
	for range 5 {
		a.refused("192.0.2.9:1", surfaceHTTP, "no admin token", false, now)
	}
	if _, ok := a.admit("192.0.2.9:1", surfaceHTTP, now); !ok {
		t.Fatal("missing tokens spent the budget")
	}
	if _, ok := a.admit(addr, surfaceSocket, now.Add(time.Second)); !ok {
		t.Fatal("still throttled after the refill")
	}

	if got := logs.lines("admin token refused"); len(got) != 2 || !strings.Contains(got[0], "addr=192.0.2.7 ") ||
		!strings.Contains(got[0], "refused=1 ") || !strings.Contains(got[1], "addr=192.0.2.9 ") {
		t.Fatalf("logged before the first flush:\n%s", strings.Join(got, "\n"))
	}
	a.flush(now.Add(5 * time.Second))
	if got := logs.lines("admin token refused"); len(got) != 2 {
		t.Fatalf("flushed within %s of the last line:\n%s", authLogEvery, strings.Join(got, "\n"))
	}
	a.flush(now.Add(authLogEvery))
	got := logs.lines("admin token refused")
	if len(got) != 4 {
		t.Fatalf("after %s, want one more line per address:\n%s", authLogEvery, strings.Join(got, "\n"))
	}
	var seven string
	for _, l := range got[2:] {
		if strings.Contains(l, "addr=192.0.2.7 ") {
			seven = l
		}
	}
	for _, want := range []string{"refused=2 ", "throttled=3 ", "surfaces=\"[socket http]\"", "since=10s"} {
		if !strings.Contains(seven, want) {
			t.Errorf("aggregated line lacks %q: %s", want, seven)
		}
	}
	a.flush(now.Add(time.Hour))
	if len(a.addrs) != 0 {
		t.Fatalf("addresses kept with nothing to say: %d", len(a.addrs))
	}
}

func TestAddrKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7:40000":                   "192.0.2.7",
		"192.0.2.7":                         "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:443":        "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff:4:5:6":           "2001:db8:1:2::/64",
		"[::ffff:192.0.2.7]:1":              "192.0.2.7",
		"not an address":                    "not an address",
		"[2001:db8:1:3:3:4:5:6]:443":        "2001:db8:1:3::/64",
		"[fe80::1%eth0]:80":                 "fe80::/64",
		"2001:0db8:0001:0002:0000:0000:0:1": "2001:db8:1:2::/64",
	} {
		if got := addrKey(in); got != want {
			t.Errorf("addrKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestAuthThrottleBoundsItsMemory: past maxAuthAddrs addresses, those with
// a full budget are forgotten and the rest share one budget.
func TestAuthThrottleBoundsItsMemory(t *testing.T) {
	a := newAuthThrottle(1, 1, slog.New(slog.DiscardHandler))
	now := time.Unix(1000, 0)
	for i := range maxAuthAddrs + 100 {
		a.refused(fmt.Sprintf("10.%d.%d.%d:1", i>>16, i>>8&255, i&255), surfaceHTTP, "wrong", true, now)
	}
	if n := len(a.addrs); n > maxAuthAddrs+1 {
		t.Fatalf("%d addresses tracked", n)
	}
	if _, ok := a.addrs[overflowKey]; !ok {
		t.Fatal("newcomers past the bound have no shared budget")
	}
}

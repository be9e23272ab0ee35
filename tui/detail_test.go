package tui

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/muesli/termenv"

	"github.com/p2prelay/p2prelay/admin/adminapi"
)

// clock is a test's clock, moved by hand.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(t0.UnixNano())
	return c
}

func (c *clock) Now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Add(d time.Duration) { c.ns.Add(int64(d)) }
func (c *clock) model(ch chan adminapi.Update, cmds Commander) *Model {
	return New(Config{Updates: ch, Commands: cmds, URL: "http://127.0.0.1:9000", Now: c.Now,
		Renderer: lipgloss.NewRenderer(io.Discard, termenv.WithProfile(termenv.Ascii))})
}

func startWithClock(t *testing.T, c *clock, ch chan adminapi.Update, cmds Commander, w, h int) *teatest.TestModel {
	t.Helper()
	tm := teatest.NewTestModel(t, c.model(ch, cmds), teatest.WithInitialTermSize(w, h))
	t.Cleanup(func() { _ = tm.Quit() })
	return tm
}

// alphaDetail is what the relay says of alpha, sampled at t0+sec.
func alphaDetail(sec int, in uint64) *adminapi.DeviceDetail {
	d := device("alpha", 5*time.Minute, "bravo")
	d.Available = false
	return &adminapi.DeviceDetail{Device: d, Time: t0.Add(time.Duration(sec) * time.Second),
		TokenSubject: "alpha", TokenExpires: t0.Add(23 * time.Hour),
		MessagesIn: in, MessagesOut: 40, BytesIn: in * 24, BytesOut: 960, AcksOwed: 1, AcksAwaited: 2,
		RefusalsByCode: map[string]uint64{"RATE_LIMITED": 3, "TOO_LARGE": 1}, Watched: true, Dropped: 12}
}

func alphaTraffic(from int, events ...string) *adminapi.TrafficBatch {
	b := &adminapi.TrafficBatch{}
	for i, ev := range events {
		tr := adminapi.Traffic{Time: t0.Add(time.Duration(from+i) * time.Millisecond), ID: "alpha", Dir: adminapi.DirIn, Event: ev, Size: 24}
		switch ev {
		case "ping":
			tr.Dir, tr.Ack, tr.RTT = adminapi.DirOut, true, 1250*time.Microsecond
		case "":
			tr.Size, tr.Code, tr.Reason = 0, "RATE_LIMITED", "more than 200 requests a second"
		}
		b.Traffic = append(b.Traffic, tr)
	}
	return b
}

// TestDetailWithLiveTail: enter opens the selected device's detail and
// watches it; its samples and traffic show as they come; esc goes back and
// stops watching.
func TestDetailWithLiveTail(t *testing.T) {
	ch, cmds := feed(), &fakeCommands{}
	tm := startWithClock(t, newClock(), ch, cmds, 80, 24)
	waitFor(t, tm, "golf could not pair")
	typeKeys(tm, "enter")
	waitFor(t, tm, "reading what the relay knows")
	ch <- adminapi.Update{Status: adminapi.StatusLive, Detail: alphaDetail(0, 100)}
	ch <- adminapi.Update{Status: adminapi.StatusLive, Traffic: alphaTraffic(0, "hello", "ping", "")}
	ch <- adminapi.Update{Status: adminapi.StatusLive, Detail: alphaDetail(1, 150)}
	waitFor(t, tm, "(50.0/s)") // the last sent: the traffic before it is in
	ch <- adminapi.Update{Status: adminapi.StatusLive, Traffic: &adminapi.TrafficBatch{
		Traffic: alphaTraffic(5, "tock").Traffic, Lost: 3}}
	waitFor(t, tm, "3 lost")
	golden.RequireEqual(t, []byte(final(t, tm)))
	if got := cmds.Calls(); !slices.Equal(got, []string{"watch alpha"}) {
		t.Fatalf("commands %v", got)
	}
}

func TestDetailBackStopsWatching(t *testing.T) {
	ch, cmds := feed(), &fakeCommands{}
	tm := startWithClock(t, newClock(), ch, cmds, 100, 30)
	waitFor(t, tm, "golf could not pair")
	typeKeys(tm, "tab", "tab", "j", "enter") // Pairs: echo ↔ foxtrot, the side that asked
	waitFor(t, tm, "reading what the relay knows")
	ch <- adminapi.Update{Status: adminapi.StatusLive, Detail: &adminapi.DeviceDetail{Device: adminapi.Device{ID: "echo"}, Offline: true}}
	waitFor(t, tm, "not on the relay now")
	typeKeys(tm, "esc")
	waitFor(t, tm, "All devices 7")
	typeKeys(tm, "tab", "enter") // the event log: no device
	waitFor(t, tm, "select a device to look at")
	final(t, tm)
	if got := cmds.Calls(); !slices.Equal(got, []string{"watch echo", "unwatch echo"}) {
		t.Fatalf("commands %v", got)
	}
}

// TestDetailCommands: K and u act on the device whose detail is open.
func TestDetailCommands(t *testing.T) {
	ch, cmds := feed(), &fakeCommands{}
	tm := startWithClock(t, newClock(), ch, cmds, 100, 30)
	waitFor(t, tm, "golf could not pair")
	typeKeys(tm, "j", "enter", "u")
	waitFor(t, tm, "Break the pair alpha ↔ bravo")
	typeKeys(tm, "y")
	waitFor(t, tm, "broke the pair of alpha")
	typeKeys(tm, "K")
	waitFor(t, tm, `Kick device "bravo"`)
	typeKeys(tm, "y")
	waitFor(t, tm, "kicked bravo")
	final(t, tm)
	if got := cmds.Calls(); !slices.Equal(got, []string{"watch bravo", "unpair alpha", "kick bravo"}) {
		t.Fatalf("commands %v", got)
	}
}

// rows returns the ids of the all-devices pane, in order.
func rows(m *Model) string { return strings.Join(m.all.rows.items, ",") }

// TestSortDevices: s goes through the orders, shown in the device panes'
// titles, with the column sorted by kept beside the id.
func TestSortDevices(t *testing.T) {
	ch := feed()
	seq := uint64(15)
	stats := func(rates map[string]float64, refusals map[string]uint64) {
		seq++
		ch <- adminapi.Update{Status: adminapi.StatusLive, Deltas: []adminapi.Delta{{Seq: seq, Kind: adminapi.KindStats, Time: t0,
			Stats: fixtureDeltas()[4].Stats, DevicesSampled: true, DeviceRates: rates, DeviceRefusals: refusals}}}
	}
	stats(map[string]float64{"echo": 9, "alpha": 4.5, "golf": 4.5}, map[string]uint64{"charlie": 7, "delta": 2})
	c := newClock()
	m := c.model(ch, &fakeCommands{})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(80, 24))
	t.Cleanup(func() { _ = tm.Quit() })
	waitFor(t, tm, "golf could not pair")
	typeKeys(tm, "s")
	waitFor(t, tm, "by uptime")
	typeKeys(tm, "s")
	waitFor(t, tm, "MSG/S")
	stats(map[string]float64{"foxtrot": 20, "echo": 9}, nil) // the order follows the rates
	waitFor(t, tm, "20.0")
	typeKeys(tm, "s")
	waitFor(t, tm, "REFUSED")
	golden.RequireEqual(t, []byte(final(t, tm)))

	// The same presses, on the model itself, to read each order.
	m = c.model(nil, &fakeCommands{})
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	m.Update(streamMsg{{Status: adminapi.StatusLive, Snapshot: fixture()}, {Status: adminapi.StatusLive, Deltas: fixtureDeltas()}})
	seq = 15
	apply := func(rates map[string]float64, refusals map[string]uint64) {
		seq++
		m.Update(streamMsg{{Status: adminapi.StatusLive, Deltas: []adminapi.Delta{{Seq: seq, Kind: adminapi.KindStats, Time: t0,
			Stats: &adminapi.Stats{Time: t0}, DevicesSampled: true, DeviceRates: rates, DeviceRefusals: refusals}}}})
	}
	apply(map[string]float64{"echo": 9, "alpha": 4.5, "golf": 4.5}, map[string]uint64{"charlie": 7, "delta": 2})
	want := []string{
		"alpha,bravo,charlie,delta,echo,foxtrot,golf",
		"delta,alpha,bravo,echo,foxtrot,golf,charlie", // uptime: longest first
		"echo,alpha,golf,bravo,charlie,delta,foxtrot", // rate, ties by id
		"charlie,delta,alpha,bravo,echo,foxtrot,golf", // refusals
		"alpha,bravo,charlie,delta,echo,foxtrot,golf",
	}
	for i, w := range want {
		if i > 0 {
			m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("s")})
		}
		m.Update(tickMsg(t0))
		if got := rows(m); got != w {
			t.Errorf("order %d (%s): %s, want %s", i, m.data.order, got, w)
		}
		if title := " 7 · by " + m.data.order.String(); !strings.Contains(m.View(), title) {
			t.Errorf("no title %q:\n%s", title, m.View())
		}
	}
	m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("ss")})
	apply(map[string]float64{"golf": 30}, nil)
	m.Update(tickMsg(t0))
	if got := rows(m); !strings.HasPrefix(got, "golf,") {
		t.Errorf("by rate, after new rates: %s", got)
	}
}

// TestHintExpires: a notice goes after HintTimeout, or at the next key.
func TestHintExpires(t *testing.T) {
	c := newClock()
	tm := startWithClock(t, c, feed(), &fakeCommands{}, 100, 30)
	waitFor(t, tm, "golf could not pair")
	typeKeys(tm, "tab", "tab", "tab", "K")
	waitFor(t, tm, "select a device to kick")
	c.Add(DefaultHintTimeout)
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		return strings.Contains(string(b), "tab next pane") && !strings.Contains(string(b), "select a device")
	}, teatest.WithDuration(wait), teatest.WithCheckInterval(10*time.Millisecond))

	typeKeys(tm, "u")
	waitFor(t, tm, "select a pair")
	typeKeys(tm, "j") // any key
	m := final(t, tm)
	if strings.Contains(m, "select a pair") {
		t.Fatalf("the hint outlived the next key:\n%s", m)
	}
}

// TestTokenReentered: when the relay refuses the token, t takes another,
// typed unseen, and hands it to the subscription.
func TestTokenReentered(t *testing.T) {
	ch, cmds := feed(), &fakeCommands{}
	tm := startWithClock(t, newClock(), ch, cmds, 100, 30)
	waitFor(t, tm, "golf could not pair")
	ch <- adminapi.Update{Status: adminapi.StatusUnauthorized, Err: fmt.Errorf("UNAUTHORIZED: wrong admin token")}
	waitFor(t, tm, "press t to enter it")
	typeKeys(tm, "t")
	waitFor(t, tm, "admin token:")
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("p2pa_secret-1"), Paste: true})
	typeKeys(tm, "x")
	waitFor(t, tm, "••••")
	typeKeys(tm, "enter")
	waitFor(t, tm, "trying the new token")
	ch <- adminapi.Update{Status: adminapi.StatusLive, Snapshot: fixture()}
	waitFor(t, tm, "● live")
	out := final(t, tm)
	if strings.Contains(out, "secret") {
		t.Fatalf("the token shows:\n%s", out)
	}
	if got := cmds.Calls(); !slices.Equal(got, []string{"token p2pa_secret-1x"}) {
		t.Fatalf("commands %v", got)
	}
}

// TestRatesWhileDown: the header and the pairs show no rate while the
// relay is down, the last ones being stale.
func TestRatesWhileDown(t *testing.T) {
	m := newModel(nil, &fakeCommands{})
	m.Update(tea.WindowSizeMsg{Width: 150, Height: 45})
	m.Update(streamMsg{{Status: adminapi.StatusLive, Snapshot: fixture()}, {Status: adminapi.StatusLive, Deltas: fixtureDeltas()}})
	m.Update(tickMsg(t0))
	if v := m.View(); !strings.Contains(v, "(4.0/s)") || strings.Contains(v, "—") {
		t.Fatalf("live:\n%s", v)
	}
	m.Update(streamMsg{{Status: adminapi.StatusDown, Err: fmt.Errorf("relay unreachable: connection refused")}})
	m.Update(tickMsg(t0))
	v := m.View()
	if !strings.Contains(v, "msgs 139 (—/s)") || !strings.Contains(v, "acks 30 (—/s)") || strings.Contains(v, "4.0") {
		t.Fatalf("down:\n%s", v)
	}
}

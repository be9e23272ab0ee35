package tui

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/muesli/termenv"

	"github.com/p2prelay/p2prelay/admin/adminapi"
	"github.com/p2prelay/p2prelay/admin/adminclient"
)

const wait = 5 * time.Second

// t0 is the fixed clock of every test.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// fakeCommands records the commands the dashboard sends.
type fakeCommands struct {
	mu    sync.Mutex
	calls []string
	err   error
}

func (f *fakeCommands) Kick(_ context.Context, id string) error {
	return f.record("kick " + id)
}

func (f *fakeCommands) Unpair(_ context.Context, id string) error {
	return f.record("unpair " + id)
}

func (f *fakeCommands) Watch(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "watch "+id)
	return nil
}

func (f *fakeCommands) Unwatch(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "unwatch "+id)
	return nil
}

func (f *fakeCommands) SetToken(tok string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "token "+tok)
}

func (f *fakeCommands) record(call string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	return f.err
}

func (f *fakeCommands) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func newModel(updates <-chan adminapi.Update, cmds Commander) *Model {
	return New(Config{
		Updates:  updates,
		Commands: cmds,
		URL:      "http://127.0.0.1:9000",
		Renderer: lipgloss.NewRenderer(io.Discard, termenv.WithProfile(termenv.Ascii)),
		Now:      func() time.Time { return t0 },
	})
}

func device(id string, ago time.Duration, peer string) adminapi.Device {
	return adminapi.Device{
		ID: id, Peer: peer, Available: peer == "", ConnectedAt: t0.Add(-ago),
		Address: "127.0.0.1:4" + fmt.Sprint(1000+len(id)*7), Transport: "websocket", Generation: "gen2", EngineIO: 4,
	}
}

// fixture is a small relay: six devices, two pairs.
func fixture() *adminapi.Snapshot {
	delta := device("delta", 3*time.Hour, "")
	delta.Generation, delta.EngineIO, delta.Transport = "gen1", 3, "polling"
	return &adminapi.Snapshot{
		Seq:  10,
		Time: t0.Add(-time.Minute),
		Devices: []adminapi.Device{
			device("alpha", 5*time.Minute, "bravo"), device("bravo", 4*time.Minute, "alpha"),
			device("charlie", 42*time.Second, ""), delta,
			device("echo", 2*time.Minute, "foxtrot"), device("foxtrot", 2*time.Minute, "echo"),
		},
		Pairs: []adminapi.Pair{
			{A: "alpha", B: "bravo", Since: t0.Add(-3 * time.Minute), Messages: 120},
			{A: "echo", B: "foxtrot", Since: t0.Add(-time.Minute), Messages: 7},
		},
		Stats: adminapi.Stats{Time: t0.Add(-time.Minute), Devices: 6, Pairs: 2, Messages: 127, Acks: 30,
			Refusals: map[string]uint64{"BUSY": 2, "OFFLINE": 1}},
	}
}

// fixtureDeltas follow fixture: a device joins, a pairing is refused, and
// three seconds of counters.
func fixtureDeltas() []adminapi.Delta {
	golf := device("golf", 0, "")
	golf.ConnectedAt = t0.Add(-50 * time.Second)
	ds := []adminapi.Delta{
		{Seq: 11, Kind: adminapi.KindDeviceConnected, Time: t0.Add(-50 * time.Second), ID: "golf", Device: &golf},
		{Seq: 12, Kind: adminapi.KindPairRefused, Time: t0.Add(-40 * time.Second), ID: "golf", Peer: "alpha", Code: "BUSY"},
	}
	for i, rate := range []float64{2, 8, 4} {
		at := t0.Add(time.Duration(i-3) * time.Second)
		st := &adminapi.Stats{Time: at, Devices: 7, Pairs: 2, Messages: 127 + uint64(i+1)*4, MessagesPerSec: rate, Acks: 30,
			AcksPerSec: 0.5, Refusals: map[string]uint64{"BUSY": 3, "OFFLINE": 1}}
		ds = append(ds, adminapi.Delta{Seq: uint64(13 + i), Kind: adminapi.KindStats, Time: at, Stats: st,
			PairMessages: map[string]uint64{"alpha": 120 + uint64(i+1)*4}, PairRates: map[string]float64{"alpha": 4}})
	}
	return ds
}

// feed returns a stream holding the fixture.
func feed() chan adminapi.Update {
	ch := make(chan adminapi.Update, 16)
	ch <- adminapi.Update{Status: adminapi.StatusConnecting}
	ch <- adminapi.Update{Status: adminapi.StatusLive, Snapshot: fixture()}
	ch <- adminapi.Update{Status: adminapi.StatusLive, Deltas: fixtureDeltas()}
	return ch
}

func startTest(t *testing.T, updates chan adminapi.Update, cmds Commander, w, h int) (*teatest.TestModel, *Model) {
	t.Helper()
	m := newModel(updates, cmds)
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(w, h))
	t.Cleanup(func() { _ = tm.Quit() })
	return tm, m
}

func waitFor(t *testing.T, tm *teatest.TestModel, text string) {
	t.Helper()
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte(text)) },
		teatest.WithDuration(wait), teatest.WithCheckInterval(10*time.Millisecond))
}

func typeKeys(tm *teatest.TestModel, keys ...string) {
	for _, k := range keys {
		switch k {
		case "tab":
			tm.Send(tea.KeyMsg{Type: tea.KeyTab})
		case "shift+tab":
			tm.Send(tea.KeyMsg{Type: tea.KeyShiftTab})
		case "enter":
			tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
		case "esc":
			tm.Send(tea.KeyMsg{Type: tea.KeyEsc})
		case "down":
			tm.Send(tea.KeyMsg{Type: tea.KeyDown})
		default:
			tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)})
		}
	}
}

// final quits and returns the last screen.
func final(t *testing.T, tm *teatest.TestModel) string {
	t.Helper()
	typeKeys(tm, "q")
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(wait))
	return fm.(*Model).View()
}

func TestGoldenDashboard(t *testing.T) {
	tm, _ := startTest(t, feed(), &fakeCommands{}, 110, 30)
	waitFor(t, tm, "golf could not pair")
	golden.RequireEqual(t, []byte(final(t, tm)))
}

func TestGoldenNarrow(t *testing.T) {
	tm, _ := startTest(t, feed(), &fakeCommands{}, 80, 24)
	waitFor(t, tm, "golf could not pair")
	golden.RequireEqual(t, []byte(final(t, tm)))
}

func TestGoldenWide(t *testing.T) {
	tm, _ := startTest(t, feed(), &fakeCommands{}, 150, 45)
	waitFor(t, tm, "golf could not pair")
	golden.RequireEqual(t, []byte(final(t, tm)))
}

// TestGoldenHelpNarrow: at 80x24 the help still shows every key.
func TestGoldenHelpNarrow(t *testing.T) {
	tm, _ := startTest(t, feed(), &fakeCommands{}, 80, 24)
	waitFor(t, tm, "golf could not pair")
	typeKeys(tm, "?")
	waitFor(t, tm, "Any key goes back")
	golden.RequireEqual(t, []byte(final(t, tm)))
}

func TestGoldenHelp(t *testing.T) {
	tm, _ := startTest(t, feed(), &fakeCommands{}, 90, 26)
	waitFor(t, tm, "golf could not pair")
	typeKeys(tm, "?")
	waitFor(t, tm, "Any key goes back")
	golden.RequireEqual(t, []byte(final(t, tm)))
}

func TestGoldenRelayDown(t *testing.T) {
	ch := make(chan adminapi.Update, 4)
	ch <- adminapi.Update{Status: adminapi.StatusConnecting}
	ch <- adminapi.Update{Status: adminapi.StatusDown, Err: fmt.Errorf("%w: dial tcp 127.0.0.1:9000: connection refused", adminclient.ErrUnreachable)}
	tm, _ := startTest(t, ch, &fakeCommands{}, 100, 20)
	waitFor(t, tm, "connection refused")
	golden.RequireEqual(t, []byte(final(t, tm)))
}

func TestTokenRefusedState(t *testing.T) {
	ch := feed()
	tm, _ := startTest(t, ch, &fakeCommands{}, 100, 24)
	waitFor(t, tm, "golf could not pair")
	ch <- adminapi.Update{Status: adminapi.StatusUnauthorized, Err: errors.New("UNAUTHORIZED: wrong admin token")}
	waitFor(t, tm, "token refused by the relay")
	out := final(t, tm)
	for _, want := range []string{"token refused by the relay", "the relay refused the admin token", "alpha"} {
		if !strings.Contains(out, want) {
			t.Errorf("screen lacks %q:\n%s", want, out)
		}
	}
}

func TestReconnectShowsLiveAgain(t *testing.T) {
	ch := feed()
	tm, _ := startTest(t, ch, &fakeCommands{}, 100, 24)
	waitFor(t, tm, "golf could not pair")
	ch <- adminapi.Update{Status: adminapi.StatusDown, Err: errors.New("relay unreachable: connection lost")}
	waitFor(t, tm, "relay down")
	snap := fixture()
	snap.Seq, snap.Devices = 40, snap.Devices[:2]
	snap.Pairs = snap.Pairs[:1]
	ch <- adminapi.Update{Status: adminapi.StatusConnecting}
	ch <- adminapi.Update{Status: adminapi.StatusLive, Snapshot: snap}
	waitFor(t, tm, "synced: 2 devices, 1 pair")
	out := final(t, tm)
	if !strings.Contains(out, "● live") || strings.Contains(out, "charlie") || !strings.Contains(out, "relay down: relay unreachable: connection lost") {
		t.Fatalf("after reconnecting:\n%s", out)
	}
}

func TestFilter(t *testing.T) {
	tm, m := startTest(t, feed(), &fakeCommands{}, 110, 30)
	waitFor(t, tm, "golf could not pair")
	typeKeys(tm, "/", "O", "t", "enter")
	waitFor(t, tm, `filter "ot"`)
	out := final(t, tm)
	if got := m.all.rows.items; fmt.Sprint(got) != "[foxtrot]" {
		t.Fatalf("all devices filtered to %v", got)
	}
	if got := m.pairs.rows.items; fmt.Sprint(got) != "[echo]" {
		t.Fatalf("pairs filtered to %v (a pair matches by either side)", got)
	}
	if strings.Contains(out, "alpha") || !strings.Contains(out, "echo ↔ foxtrot") {
		t.Fatalf("filtered screen:\n%s", out)
	}
}

func TestFilterEscClears(t *testing.T) {
	tm, m := startTest(t, feed(), &fakeCommands{}, 110, 30)
	waitFor(t, tm, "golf could not pair")
	typeKeys(tm, "/", "zz", "enter")
	waitFor(t, tm, "no device matches")
	typeKeys(tm, "esc")
	final(t, tm)
	if len(m.all.rows.items) != 7 || m.data.filter != "" {
		t.Fatalf("after esc: filter %q, rows %v", m.data.filter, m.all.rows.items)
	}
}

func TestPaneSwitch(t *testing.T) {
	tm, m := startTest(t, feed(), &fakeCommands{}, 110, 30)
	waitFor(t, tm, "golf could not pair")
	typeKeys(tm, "tab", "tab", "tab", "shift+tab", "j")
	final(t, tm)
	if m.focus != panePairs {
		t.Fatalf("focus %d, want the pairs pane", m.focus)
	}
	if sel, _ := m.pairs.rows.Selected(); sel != "echo" {
		t.Fatalf("pairs cursor on %q, want echo", sel)
	}
	if sel, _ := m.all.rows.Selected(); sel != "alpha" {
		t.Fatalf("all devices cursor moved to %q", sel)
	}
}

func TestKickConfirm(t *testing.T) {
	cmds := &fakeCommands{}
	tm, _ := startTest(t, feed(), cmds, 110, 30)
	waitFor(t, tm, "golf could not pair")
	typeKeys(tm, "j", "j", "K")
	waitFor(t, tm, `Kick device "charlie"`)
	typeKeys(tm, "n")
	waitFor(t, tm, "cancelled")
	typeKeys(tm, "j", "K")
	waitFor(t, tm, `Kick device "delta"`)
	typeKeys(tm, "y")
	waitFor(t, tm, "kicked delta")
	final(t, tm)
	if got := cmds.Calls(); fmt.Sprint(got) != "[kick delta]" {
		t.Fatalf("commands %v, want only kick delta", got)
	}
}

func TestUnpairConfirm(t *testing.T) {
	cmds := &fakeCommands{}
	tm, _ := startTest(t, feed(), cmds, 110, 30)
	waitFor(t, tm, "golf could not pair")
	typeKeys(tm, "tab", "tab", "j", "u")
	waitFor(t, tm, "Break the pair echo ↔ foxtrot")
	typeKeys(tm, "y")
	waitFor(t, tm, "broke the pair of echo")
	// From a device pane: the selected device's pair.
	typeKeys(tm, "tab", "tab", "j", "u")
	waitFor(t, tm, "Break the pair alpha ↔ bravo")
	typeKeys(tm, "esc")
	waitFor(t, tm, "cancelled")
	final(t, tm)
	if got := cmds.Calls(); fmt.Sprint(got) != "[unpair echo]" {
		t.Fatalf("commands %v", got)
	}
}

func TestCommandFailureShown(t *testing.T) {
	cmds := &fakeCommands{err: errors.New("OFFLINE: device \"alpha\" is not connected")}
	tm, _ := startTest(t, feed(), cmds, 110, 30)
	waitFor(t, tm, "golf could not pair")
	typeKeys(tm, "K", "y")
	waitFor(t, tm, "kick alpha failed: OFFLINE")
	typeKeys(tm, "tab", "tab", "tab", "K")
	waitFor(t, tm, "select a device to kick")
	final(t, tm)
}

func TestKeysOnAnEmptyRelay(t *testing.T) {
	ch := make(chan adminapi.Update, 2)
	ch <- adminapi.Update{Status: adminapi.StatusLive, Snapshot: &adminapi.Snapshot{Seq: 1, Time: t0}}
	cmds := &fakeCommands{}
	tm, _ := startTest(t, ch, cmds, 100, 24)
	waitFor(t, tm, "no devices")
	typeKeys(tm, "j", "k", "G", "g", "K", "u", "tab", "u", "tab", "tab", "j", "/", "x", "enter")
	waitFor(t, tm, "no device matches")
	final(t, tm)
	if len(cmds.Calls()) != 0 {
		t.Fatalf("commands on an empty relay: %v", cmds.Calls())
	}
}

// TestHelpIsGeneratedFromTheKeyMap: the help lists every binding of the
// key map, each with every key it takes, at 120x30 as at 80x24.
func TestHelpIsGeneratedFromTheKeyMap(t *testing.T) {
	keys := DefaultKeyMap()
	var inHelp []key.Binding
	for _, g := range keys.FullHelp() {
		inHelp = append(inHelp, g...)
	}
	v := reflect.ValueOf(keys)
	for i := range v.NumField() {
		b := v.Field(i).Interface().(key.Binding)
		if !slices.ContainsFunc(inHelp, func(h key.Binding) bool { return reflect.DeepEqual(h.Keys(), b.Keys()) && h.Help() == b.Help() }) {
			t.Errorf("KeyMap.%s is not in the help", v.Type().Field(i).Name)
		}
		var names []string
		for _, k := range b.Keys() {
			names = append(names, keyName(k))
		}
		if got := strings.Join(names, "/"); got != b.Help().Key {
			t.Errorf("KeyMap.%s takes %s, its help says %q", v.Type().Field(i).Name, got, b.Help().Key)
		}
	}
	for _, size := range [][2]int{{120, 30}, {80, 24}} {
		tm, _ := startTest(t, feed(), &fakeCommands{}, size[0], size[1])
		waitFor(t, tm, "golf could not pair")
		typeKeys(tm, "?")
		waitFor(t, tm, "Any key goes back")
		out := final(t, tm)
		for _, b := range inHelp {
			if !strings.Contains(out, b.Help().Key+" ") || !strings.Contains(out, b.Help().Desc) {
				t.Errorf("%dx%d: help lacks %q %q", size[0], size[1], b.Help().Key, b.Help().Desc)
			}
		}
	}
}

// TestRedrawsAreCoalesced checks that stream updates do not draw the
// screen: only the redraw clock (or a key) does.
func TestRedrawsAreCoalesced(t *testing.T) {
	m := newModel(nil, &fakeCommands{})
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 30})
	m.Update(streamMsg{{Status: adminapi.StatusLive, Snapshot: fixture()}})
	m.Update(tickMsg(t0))
	before, n := m.View(), m.Redraws()
	for i := 0; i < 1000; i++ {
		d := device(fmt.Sprintf("burst%04d", i), 0, "")
		m.Update(streamMsg{{Status: adminapi.StatusLive, Deltas: []adminapi.Delta{{Seq: uint64(11 + i), Kind: adminapi.KindDeviceConnected, Time: t0, ID: d.ID, Device: &d}}}})
	}
	if m.Redraws() != n || m.View() != before {
		t.Fatalf("stream updates drew the screen %d times", m.Redraws()-n)
	}
	m.Update(tickMsg(t0))
	if m.Redraws() != n+1 || !strings.Contains(m.View(), "All devices 1,006") {
		t.Fatalf("the tick did not draw the burst once (%d redraws):\n%s", m.Redraws()-n, m.View())
	}
	m.Update(tickMsg(t0))
	if m.Redraws() != n+1 {
		t.Fatal("an idle tick drew the screen")
	}
}

func TestResizeFitsTheScreen(t *testing.T) {
	for _, size := range [][2]int{{200, 60}, {120, 40}, {100, 30}, {80, 24}, {61, 17}, {minWidth, minHeight}} {
		w, h := size[0], size[1]
		m := newModel(nil, &fakeCommands{})
		m.Update(streamMsg{{Status: adminapi.StatusLive, Snapshot: fixture()}})
		m.Update(tea.WindowSizeMsg{Width: w, Height: h})
		lines := strings.Split(m.View(), "\n")
		if len(lines) != h {
			t.Errorf("%dx%d: %d lines", w, h, len(lines))
		}
		for i, l := range lines {
			if lw := ansi.StringWidth(l); lw > w {
				t.Errorf("%dx%d: line %d is %d wide: %q", w, h, i, lw, l)
			}
		}
	}
	m := newModel(nil, &fakeCommands{})
	m.Update(tea.WindowSizeMsg{Width: 30, Height: 8})
	if !strings.Contains(m.View(), "needs at least") {
		t.Fatalf("tiny screen: %q", m.View())
	}
}

func TestEventLogIsBounded(t *testing.T) {
	m := New(Config{Updates: nil, Commands: &fakeCommands{}, LogSize: 10, Now: func() time.Time { return t0 },
		Renderer: lipgloss.NewRenderer(io.Discard, termenv.WithProfile(termenv.Ascii))})
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 40})
	m.Update(streamMsg{{Status: adminapi.StatusLive, Snapshot: &adminapi.Snapshot{Seq: 0, Time: t0}}})
	for i := 1; i <= 500; i++ {
		m.Update(streamMsg{{Status: adminapi.StatusLive, Deltas: []adminapi.Delta{{Seq: uint64(i), Kind: adminapi.KindDeviceDisconnected, Time: t0, ID: fmt.Sprintf("gone%03d", i), Reason: "transport close"}}}})
	}
	m.Update(tickMsg(t0))
	if len(m.events.log.buf) != 10 || len(m.events.rows.items) != 10 {
		t.Fatalf("log holds %d entries, shows %d", len(m.events.log.buf), len(m.events.rows.items))
	}
	if v := m.View(); !strings.Contains(v, "gone500") || strings.Contains(v, "gone490") {
		t.Fatalf("log does not show the newest entries:\n%s", v)
	}
}

func TestStreamCloseIsQuiet(t *testing.T) {
	ch := feed()
	close(ch)
	tm, _ := startTest(t, ch, &fakeCommands{}, 100, 24)
	waitFor(t, tm, "golf could not pair")
	final(t, tm)
}

// TestPairRatesComeFromTheStats: the pairs pane shows the rates the stats
// deltas carry (the hub computes them); a pair that relayed nothing shows
// 0.0, and a new pair of the same asking side does not inherit the old
// pair's rate.
func TestPairRatesComeFromTheStats(t *testing.T) {
	m := New(Config{Updates: nil, Commands: &fakeCommands{}, Now: func() time.Time { return t0 },
		Renderer: lipgloss.NewRenderer(io.Discard, termenv.WithProfile(termenv.Ascii))})
	m.Update(tea.WindowSizeMsg{Width: 160, Height: 40})
	m.Update(streamMsg{{Status: adminapi.StatusLive, Snapshot: fixture()}})
	seq := uint64(10)
	send := func(d adminapi.Delta) {
		seq++
		d.Seq = seq
		m.Update(streamMsg{{Status: adminapi.StatusLive, Deltas: []adminapi.Delta{d}}})
	}
	stats := func(sec int, rates map[string]float64) {
		send(adminapi.Delta{Kind: adminapi.KindStats, Time: t0.Add(time.Duration(sec) * time.Second),
			Stats: &adminapi.Stats{Time: t0.Add(time.Duration(sec) * time.Second)}, PairRates: rates})
	}
	rate := func(pair string) string {
		t.Helper()
		m.Update(tickMsg(t0))
		for _, l := range strings.Split(m.View(), "\n") {
			if i := strings.Index(l, pair); i >= 0 {
				return strings.Fields(l[i+len(pair):])[1]
			}
		}
		t.Fatalf("no row %q:\n%s", pair, m.View())
		return ""
	}
	stats(1, map[string]float64{"alpha": 12.5})
	if r, r2 := rate("alpha ↔ bravo"), rate("echo ↔ foxtrot"); r != "12.5" || r2 != "0.0" {
		t.Fatalf("rates %s and %s, want 12.5 and 0.0", r, r2)
	}
	// alpha's pair ends and alpha pairs again.
	send(adminapi.Delta{Kind: adminapi.KindPairEnded, Time: t0, ID: "alpha", Peer: "bravo"})
	send(adminapi.Delta{Kind: adminapi.KindPairCreated, Time: t0, ID: "alpha", Peer: "charlie"})
	if r := rate("alpha ↔ charlie"); r != "0.0" {
		t.Errorf("alpha's new pair got the rate %s of the old pair", r)
	}
	stats(2, map[string]float64{"alpha": 10})
	if r := rate("alpha ↔ charlie"); r != "10.0" {
		t.Errorf("alpha's new pair: rate %s, want 10.0", r)
	}
}

// TestCountersRedrawWithoutRebuild: the once-a-second counters redraw the
// screen on the next tick without rebuilding the rows; a device joining
// rebuilds them.
func TestCountersRedrawWithoutRebuild(t *testing.T) {
	m := New(Config{Updates: nil, Commands: &fakeCommands{}, Now: func() time.Time { return t0 },
		Renderer: lipgloss.NewRenderer(io.Discard, termenv.WithProfile(termenv.Ascii))})
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 40})
	m.Update(streamMsg{{Status: adminapi.StatusLive, Snapshot: fixture()}})
	m.Update(tickMsg(t0))
	n := m.Redraws()
	stats := adminapi.Delta{Seq: 11, Kind: adminapi.KindStats, Time: t0, Stats: &adminapi.Stats{Time: t0, Messages: 999}}
	m.Update(streamMsg{{Status: adminapi.StatusLive, Deltas: []adminapi.Delta{stats}}})
	if m.dirty {
		t.Fatal("counters alone marked the rows for rebuilding")
	}
	m.Update(tickMsg(t0))
	if m.Redraws() != n+1 || !strings.Contains(m.View(), "999") {
		t.Fatalf("the counters were not drawn (%d redraws):\n%s", m.Redraws()-n, m.View())
	}
	golf := device("golf", 0, "")
	m.Update(streamMsg{{Status: adminapi.StatusLive, Deltas: []adminapi.Delta{{Seq: 12, Kind: adminapi.KindDeviceConnected, Time: t0, ID: "golf", Device: &golf}}}})
	if !m.dirty {
		t.Fatal("a device joining did not mark the rows for rebuilding")
	}
	m.Update(tickMsg(t0))
	if !strings.Contains(m.View(), "golf") {
		t.Fatalf("golf not shown:\n%s", m.View())
	}
}

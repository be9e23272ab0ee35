package tui

import (
	"fmt"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/p2prelay/p2prelay/admin/adminapi"
)

// bigSnapshot is a relay with n devices, a fifth of them in pairs.
func bigSnapshot(n int) *adminapi.Snapshot {
	snap := &adminapi.Snapshot{Seq: 1, Time: t0, Stats: adminapi.Stats{Time: t0, Devices: n}}
	for i := 0; i < n; i++ {
		d := device(fmt.Sprintf("device-%05d", i), time.Duration(i)*time.Second, "")
		if i%10 < 2 { // devices 0,1 / 10,11 / ... pair up
			other := i + 1
			if i%10 == 1 {
				other = i - 1
			}
			d.Peer, d.Available = fmt.Sprintf("device-%05d", other), false
			if i%10 == 0 {
				snap.Pairs = append(snap.Pairs, adminapi.Pair{A: d.ID, B: d.Peer, Since: t0.Add(-time.Minute), Messages: uint64(i)})
			}
		}
		snap.Devices = append(snap.Devices, d)
	}
	snap.Stats.Pairs = len(snap.Pairs)
	return snap
}

func bigModel(tb testing.TB, n int) *Model {
	tb.Helper()
	m := newModel(nil, &fakeCommands{})
	m.Update(tea.WindowSizeMsg{Width: 160, Height: 50})
	m.Update(streamMsg{{Status: adminapi.StatusLive, Snapshot: bigSnapshot(n)}})
	m.Update(tickMsg(t0))
	return m
}

func TestTenThousandDevicesDrawOnlyWhatIsVisible(t *testing.T) {
	m := bigModel(t, 10000)
	v := m.View()
	if lines := strings.Split(v, "\n"); len(lines) != 50 {
		t.Fatalf("%d lines, want 50", len(lines))
	}
	if !strings.Contains(v, "All devices 10,000") || !strings.Contains(v, "Available 8,000") || !strings.Contains(v, "Pairs 1,000") {
		t.Fatalf("counts missing:\n%s", v)
	}
	if !strings.Contains(v, "device-00000") || strings.Contains(v, "device-09999") {
		t.Fatalf("not the first page:\n%s", v)
	}
	m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("G")})
	if v := m.View(); !strings.Contains(v, "device-09999") {
		t.Fatalf("G did not reach the last device:\n%s", v)
	}
}

// BenchmarkFrame10k measures drawing the dashboard with 10,000 devices and
// 1,000 pairs: "draw" is a redraw after a key (rows unchanged), "rebuild"
// a redraw after the stream changed the data (rows re-sorted), which
// happens at most ten times a second; "by-rate" a redraw after the once-a-
// second counters moved the devices sorted by message rate; "detail" a
// redraw of one device's detail over a full traffic tail, as it comes in.
func BenchmarkFrame10k(b *testing.B) {
	m := bigModel(b, 10000)
	defer func() {
		b.Run("by-rate", func(b *testing.B) {
			m := bigModel(b, 10000)
			m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("ss")})
			seq := m.data.state.Seq
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				seq++
				rates := map[string]float64{}
				for j := range 20 { // a few devices' rates move each second
					rates[fmt.Sprintf("device-%05d", (i*7919+j*104729)%10000)] = float64(j + 1)
				}
				m.Update(streamMsg{{Status: adminapi.StatusLive, Deltas: []adminapi.Delta{{Seq: seq, Kind: adminapi.KindStats, Time: t0,
					Stats: &adminapi.Stats{Time: t0}, DevicesSampled: true, DeviceRates: rates}}}})
				m.redraw()
			}
		})
		b.Run("detail", func(b *testing.B) {
			m := bigModel(b, 10000)
			m.Update(tea.KeyMsg{Type: tea.KeyEnter})
			m.Update(streamMsg{{Status: adminapi.StatusLive, Detail: &adminapi.DeviceDetail{Device: adminapi.Device{ID: "device-00000"}, Time: t0}}})
			batch := &adminapi.TrafficBatch{}
			for i := range 20 { // 200 a second, the relay's default bound, at ten frames a second
				batch.Traffic = append(batch.Traffic, adminapi.Traffic{Time: t0, ID: "device-00000", Dir: adminapi.DirIn, Event: fmt.Sprint("tick-", i), Size: 64})
			}
			b.ReportAllocs()
			for b.Loop() {
				m.Update(streamMsg{{Status: adminapi.StatusLive, Traffic: batch}})
				m.redraw()
			}
		})
	}()
	b.Run("draw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m.redraw()
		}
	})
	b.Run("rebuild", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m.dirty = true
			m.redraw()
		}
	})
}

// BenchmarkApplyDelta10k measures taking one stream update in with 10,000
// devices (no drawing: that waits for the redraw clock).
func BenchmarkApplyDelta10k(b *testing.B) {
	m := bigModel(b, 10000)
	seq := m.data.state.Seq
	b.ReportAllocs()
	for b.Loop() {
		seq++
		m.Update(streamMsg{{Status: adminapi.StatusLive, Deltas: []adminapi.Delta{{Seq: seq, Kind: adminapi.KindPairRefused, Time: t0, ID: "device-00002", Peer: "device-00000", Code: "BUSY"}}}})
	}
}

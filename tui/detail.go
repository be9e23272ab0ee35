package tui

import (
	"fmt"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/p2prelay/p2prelay/admin/adminapi"
)

// detailView takes the place of the panes while the operator looks at one
// device: everything the relay knows of it, sampled once a second (the
// hub sends it while the device is watched), over a live tail of its
// traffic. The device's state (its peer, away) comes from the stream's
// deltas, as in the panes; its counters from the samples.
type detailView struct {
	Common
	id   string
	det  *adminapi.DeviceDetail // the latest sample; nil until the first
	prev *adminapi.DeviceDetail // the one before, for the rates
	lost uint64                 // traffic the stream could not hold for p2pctl
	tail frame[int]             // the traffic: rows are entry numbers in log
	log  ring
}

// detailInfoLines is the lines the detail takes above the traffic.
const detailInfoLines = 9

// trafficLogSize bounds the traffic kept on screen.
const trafficLogSize = 1000

func newDetailView(c Common) *detailView {
	v := &detailView{Common: c, tail: frame[int]{Common: c}, log: newRing(trafficLogSize)}
	v.tail.rows.follow = true
	v.tail.SetFocused(true)
	return v
}

func (v *detailView) SetSize(w, h int) {
	v.Common.SetSize(w, h)
	v.tail.SetSize(w, max(h-detailInfoLines, 0))
}

// Open shows device id, with nothing known of it yet.
func (v *detailView) Open(id string) {
	v.id, v.det, v.prev, v.lost = id, nil, nil, 0
	v.log = newRing(trafficLogSize)
	v.tail.rows = list[int]{follow: true, height: v.tail.rows.height}
}

// ID is the device shown.
func (v *detailView) ID() string { return v.id }

// SetDetail takes a new sample of the device.
func (v *detailView) SetDetail(det *adminapi.DeviceDetail) {
	if det.ID != v.id {
		return
	}
	if v.det != nil && !v.det.Offline && !det.Offline && v.det.ConnectedAt.Equal(det.ConnectedAt) {
		v.prev = v.det
	} else {
		v.prev = nil // a new connection's counters start afresh
	}
	v.det = det
}

// AddTraffic takes the device's traffic from a batch.
func (v *detailView) AddTraffic(b *adminapi.TrafficBatch) {
	v.lost += b.Lost
	for _, t := range b.Traffic {
		if t.ID == v.id {
			v.log.Push(logEntry{time: t.Time, text: t.Summary()})
		}
	}
}

// Update scrolls the traffic.
func (v *detailView) Update(msg tea.Msg) tea.Cmd { return v.tail.Update(msg) }

// Refresh takes the traffic that arrived into the rows.
func (v *detailView) Refresh() {
	items := v.tail.rows.items[:0:0]
	v.log.Each(func(n int, _ *logEntry) { items = append(items, n) })
	v.tail.rows.SetItems(items)
}

func (v *detailView) View() string {
	st, d := v.Styles, v.data
	label := func(s string) string { return st.Dim.Render(fmt.Sprintf("%-11s ", s)) }
	state := "offline: waiting for it to come back"
	var dev *adminapi.Device
	if d.state != nil {
		dev = d.state.Devices[v.id]
	}
	if dev != nil {
		state = st.deviceState(dev)
	} else if v.det != nil && !v.det.Offline {
		state = st.deviceState(&v.det.Device)
	}
	lines := []string{st.PaneTitle.Render(v.id) + "  " + state}
	det := v.det
	switch {
	case det == nil:
		lines = append(lines, st.Dim.Render("reading what the relay knows of it…"))
	case det.Offline:
		lines = append(lines, st.Dim.Render("not on the relay now; its detail and traffic come back with it"))
	default:
		conn := dev
		if conn == nil {
			conn = &det.Device
		}
		where := ""
		if conn.Node != "" {
			where = " · on " + conn.Node
		}
		lines = append(lines,
			label("connection")+fmt.Sprintf("%s · %s EIO %d · %s%s · since %s (%s)", conn.Transport, conn.Generation,
				conn.EngineIO, conn.Address, where, conn.ConnectedAt.UTC().Format("15:04:05"), age(d.now, conn.ConnectedAt)),
			label("token")+det.TokenSummary(d.now),
			label("sent")+v.flow(det.MessagesIn, det.BytesIn, func(x *adminapi.DeviceDetail) uint64 { return x.MessagesIn }),
			label("received")+v.flow(det.MessagesOut, det.BytesOut, func(x *adminapi.DeviceDetail) uint64 { return x.MessagesOut }),
			label("acks")+fmt.Sprintf("owes %d · awaits %d · held for it while away %d", det.AcksOwed, det.AcksAwaited, det.Held),
			label("refusals")+det.RefusalSummary(),
			label("watch")+v.watchText(),
		)
	}
	for i := range lines {
		lines[i] = cell(" "+lines[i], v.Width)
	}
	for len(lines) < detailInfoLines {
		lines = append(lines, cell("", v.Width))
	}
	lines = lines[:min(detailInfoLines, v.Height)]
	if v.tail.Height > paneChrome {
		lines = append(lines, v.tailView())
	}
	return strings.Join(lines, "\n")
}

// flow is one direction's messages, rate and bytes.
func (v *detailView) flow(msgs, bytes uint64, of func(*adminapi.DeviceDetail) uint64) string {
	r := "—"
	if v.prev != nil && v.data.live {
		if dt := v.det.Time.Sub(v.prev.Time).Seconds(); dt > 0 {
			r = fmt.Sprintf("%.1f", rate(of(v.prev), of(v.det), dt))
		}
	}
	return fmt.Sprintf("%s messages (%s/s) · %s", thousands(int(msgs)), r, adminapi.Bytes(bytes))
}

// watchText says how complete the traffic below is.
func (v *detailView) watchText() string {
	if st := v.data.state; st != nil && v.det.Node != "" && v.det.Node != st.Node {
		// Its counters and traffic are its node's own.
		return "held by node " + v.det.Node + ", which counts and watches it: point p2pctl at that node"
	}
	var parts []string
	if v.det.Dropped > 0 {
		parts = append(parts, thousands(int(v.det.Dropped))+" left out over the relay's bound")
	}
	if v.lost > 0 {
		parts = append(parts, thousands(int(v.lost))+" lost on the way")
	}
	if parts == nil {
		return "all of it below (names and sizes, never payloads)"
	}
	return strings.Join(parts, " · ")
}

func (v *detailView) tailView() string {
	title := "Traffic"
	if v.tail.rows.cursor >= len(v.tail.rows.items)-1 {
		title += " (following)"
	}
	inner := v.Width - 2 - markerWidth
	return v.tail.render(title, "  TIME         WHAT", "nothing yet", func(i int) string {
		e := v.log.At(v.tail.rows.items[i])
		if e == nil {
			return ""
		}
		return cell(e.time.UTC().Format("15:04:05.000")+" "+e.text, inner)
	})
}

// rate is messages per second between two counts.
func rate(before, after uint64, seconds float64) float64 {
	if after < before || seconds <= 0 {
		return 0
	}
	return float64(after-before) / seconds
}

package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/p2prelay/p2prelay/admin/adminapi"
)

// data is what the panes draw from; the root model owns it.
type data struct {
	state  *adminapi.State // nil until the first snapshot
	now    time.Time       // the clock at the last redraw
	filter string          // lower-case id filter, "" for none
}

// frame is what every pane has: a title, an outer size and its rows.
type frame[K comparable] struct {
	styles        *Styles
	width, height int // outer size, border included
	rows          list[K]
}

// paneChrome is the lines a pane spends on its border, title and column
// header.
const paneChrome = 4

// SetSize sets the pane's outer size.
func (f *frame[K]) SetSize(w, h int) {
	f.width, f.height = w, h
	f.rows.SetHeight(h - paneChrome)
}

// Move, Top and Bottom move the pane's cursor.
func (f *frame[K]) Move(n int) { f.rows.Move(n) }
func (f *frame[K]) Top()       { f.rows.Top() }
func (f *frame[K]) Bottom()    { f.rows.Bottom() }

// Rows returns how many rows the pane shows at once.
func (f *frame[K]) Rows() int { return f.rows.height }

// render draws the pane: border, title, column header, then the visible
// rows drawn by line(i, selected).
func (f *frame[K]) render(focused bool, title, colHeader, empty string, line func(i int) string) string {
	inner := max(f.width-2, 0)
	lines := make([]string, 0, max(f.height-2, 0))
	lines = append(lines, cell(f.styles.PaneTitle.Render(title), inner), f.styles.ColHeader.Render(cell(colHeader, inner)))
	start, end := f.rows.Window()
	if start == end && empty != "" {
		lines = append(lines, f.styles.Dim.Render(cell("  "+empty, inner)))
	}
	for i := start; i < end; i++ {
		marker := "  "
		text := line(i)
		if i == f.rows.cursor {
			// The cells' own colours would fight the row's style.
			text = ansi.Strip(text)
			if focused {
				marker = "▸ "
				text = f.styles.Selected.Render(text)
			} else {
				text = f.styles.Cursor.Render(text)
			}
		}
		lines = append(lines, cell(marker+text, inner))
	}
	for len(lines) < f.height-2 {
		lines = append(lines, strings.Repeat(" ", inner))
	}
	style := f.styles.Pane
	if focused {
		style = f.styles.PaneFocus
	}
	return style.Render(strings.Join(lines[:max(f.height-2, 0)], "\n"))
}

// devicesPane lists devices: all of them, or only the available ones.
type devicesPane struct {
	frame[string]
	available bool
}

var (
	allDeviceCols = []column{
		{key: "id", title: "ID"}, {key: "state", title: "STATE", width: 16, drop: 1},
		{key: "up", title: "UP", width: 5, drop: 2}, {key: "transport", title: "TRANSPORT", width: 9, drop: 3},
		{key: "client", title: "CLIENT", width: 9, drop: 4}, {key: "addr", title: "ADDRESS", width: 21, drop: 5},
	}
	availableCols = []column{
		{key: "id", title: "ID"}, {key: "up", title: "UP", width: 5, drop: 2},
		{key: "transport", title: "TRANSPORT", width: 9, drop: 3}, {key: "client", title: "CLIENT", width: 9, drop: 4},
		{key: "addr", title: "ADDRESS", width: 21, drop: 5},
	}
	pairCols = []column{
		{key: "pair", title: "A (ASKED) → B"}, {key: "msgs", title: "MSGS", width: 7, drop: 1},
		{key: "rate", title: "MSG/S", width: 6, drop: 2}, {key: "since", title: "SINCE", width: 5, drop: 3},
	}
)

// markerWidth is the room the selection marker takes before each row.
const markerWidth = 2

func (p *devicesPane) View(d *data, focused bool) string {
	cols := allDeviceCols
	title := "All devices"
	if p.available {
		cols, title = availableCols, "Available"
	}
	cols = fitColumns(cols, p.width-2-markerWidth, p.idWidth())
	empty := emptyText(d, "no devices", "no device")
	return p.render(focused, countTitle(title, len(p.rows.items), d.filter), "  "+titles(cols), empty, func(i int) string {
		dev := d.state.Devices[p.rows.items[i]]
		if dev == nil {
			return ""
		}
		return row(cols, func(key string) string { return p.value(dev, key, d) })
	})
}

// idWidth is the room the ids in view need, between 8 and 32 cells: other
// columns give way to it.
func (p *devicesPane) idWidth() int {
	w := 8
	start, end := p.rows.Window()
	for _, id := range p.rows.items[start:end] {
		w = max(w, ansi.StringWidth(id))
	}
	return min(w, 32)
}

func (p *devicesPane) value(dev *adminapi.Device, key string, d *data) string {
	switch key {
	case "id":
		return dev.ID
	case "state":
		switch {
		case dev.Peer != "":
			return p.styles.Paired.Render("↔ " + dev.Peer)
		case dev.Pairing != "":
			return "pairing " + dev.Pairing
		default:
			return p.styles.Available.Render("available")
		}
	case "up":
		return age(d.now, dev.ConnectedAt)
	case "transport":
		return dev.Transport
	case "client":
		return fmt.Sprintf("%s/%d", dev.Generation, dev.EngineIO)
	case "addr":
		return dev.Address
	}
	return ""
}

// pairsPane lists the live pairs with their message counts and rates.
type pairsPane struct{ frame[string] }

func (p *pairsPane) View(d *data, focused bool) string {
	need := 16
	start, end := p.rows.Window()
	for _, a := range p.rows.items[start:end] {
		if pr := d.state.Pairs[a]; pr != nil {
			need = max(need, ansi.StringWidth(pr.A+" → "+pr.B))
		}
	}
	cols := fitColumns(pairCols, p.width-2-markerWidth, min(need, 40))
	empty := emptyText(d, "no pairs", "no pair")
	return p.render(focused, countTitle("Pairs", len(p.rows.items), d.filter), "  "+titles(cols), empty, func(i int) string {
		pr := d.state.Pairs[p.rows.items[i]]
		if pr == nil {
			return ""
		}
		return row(cols, func(key string) string {
			switch key {
			case "pair":
				return pr.A + " → " + pr.B
			case "msgs":
				return fmt.Sprint(pr.Messages)
			case "rate":
				return fmt.Sprintf("%.1f", d.state.PairRates[pr.A])
			case "since":
				return age(d.now, pr.Since)
			}
			return ""
		})
	})
}

// eventsPane is the scrolling event log: a bounded ring of lines.
type eventsPane struct {
	frame[int]
	log ring
}

func newEventsPane(styles *Styles, size int) *eventsPane {
	p := &eventsPane{frame: frame[int]{styles: styles}, log: newRing(size)}
	p.rows.follow = true
	return p
}

// Add appends an entry to the log.
func (p *eventsPane) Add(e logEntry) { p.log.Push(e) }

// Refresh recomputes the visible entries for filter (lower case, "" for
// all). Rows are indexes into the ring, newest last.
func (p *eventsPane) Refresh(filter string) {
	items := p.rows.items[:0:0]
	p.log.Each(func(n int, e *logEntry) {
		if filter == "" || e.mentions(filter) {
			items = append(items, n)
		}
	})
	p.rows.SetItems(items)
}

func (p *eventsPane) View(d *data, focused bool) string {
	title := "Events"
	if p.rows.cursor >= len(p.rows.items)-1 {
		title += " (following)"
	}
	if d.filter != "" {
		title += fmt.Sprintf("  filter %q", d.filter)
	}
	inner := p.width - 2 - markerWidth
	return p.render(focused, title, "  TIME     WHAT", emptyText(d, "no events yet", "no event"), func(i int) string {
		e := p.log.At(p.rows.items[i])
		if e == nil {
			return ""
		}
		return cell(e.time.UTC().Format("15:04:05")+" "+e.text, inner)
	})
}

// logEntry is one line of the event log.
type logEntry struct {
	time time.Time
	text string
	ids  []string // lower-case ids the line is about, for the filter
}

func (e *logEntry) mentions(filter string) bool {
	for _, id := range e.ids {
		if strings.Contains(id, filter) {
			return true
		}
	}
	return false
}

// ring is a bounded log: once full, each new entry replaces the oldest.
// Entries are numbered from 0 since the start, so a number stays valid as
// long as its entry is kept.
type ring struct {
	buf   []logEntry
	total int // entries ever pushed
}

func newRing(size int) ring { return ring{buf: make([]logEntry, 0, size)} }

// Push adds an entry.
func (r *ring) Push(e logEntry) {
	if len(r.buf) < cap(r.buf) {
		r.buf = append(r.buf, e)
	} else {
		r.buf[r.total%cap(r.buf)] = e
	}
	r.total++
}

// At returns entry number n, or nil when it is gone.
func (r *ring) At(n int) *logEntry {
	if n < r.total-len(r.buf) || n >= r.total {
		return nil
	}
	return &r.buf[n%cap(r.buf)]
}

// Each calls fn for every kept entry, oldest first.
func (r *ring) Each(fn func(n int, e *logEntry)) {
	for n := r.total - len(r.buf); n < r.total; n++ {
		fn(n, r.At(n))
	}
}

// plural is "1 pair", "2 pairs".
func plural(n int, one string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%s %ss", thousands(n), one)
}

// countTitle is a pane title with its row count.
func countTitle(title string, n int, filter string) string {
	s := fmt.Sprintf("%s %s", title, thousands(n))
	if filter != "" {
		s += fmt.Sprintf("  filter %q", filter)
	}
	return s
}

func emptyText(d *data, none, noneMatching string) string {
	switch {
	case d.state == nil:
		return "waiting for the relay…"
	case d.filter != "":
		return fmt.Sprintf("%s matches %q", noneMatching, d.filter)
	}
	return none
}

// age is a compact duration since t: 42s, 5m, 3h, 2d.
func age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", max(int(d.Seconds()), 0))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// thousands formats n with thin separators: 10,000.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// joinRow lays panes side by side.
func joinRow(views ...string) string { return lipgloss.JoinHorizontal(lipgloss.Top, views...) }

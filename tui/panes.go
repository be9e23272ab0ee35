package tui

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/p2prelay/p2prelay/admin/adminapi"
)

// pane is a component in the tab order: it shows rows built from the data,
// and takes the keys while it has the focus.
type pane interface {
	component
	// Update handles a message sent to the pane: the keys, while it has
	// the focus.
	Update(msg tea.Msg) tea.Cmd
	// SetFocused says whether the pane has the focus.
	SetFocused(focused bool)
	// Refresh rebuilds the rows from the data.
	Refresh()
}

// deviceSelection is a pane whose selected row is a device.
type deviceSelection interface {
	SelectedDevice() (id string, ok bool)
}

// pairSelection is a pane whose selected row belongs to a pair.
type pairSelection interface {
	SelectedPair() (*adminapi.Pair, bool)
}

// frame is what every pane has: a border, a title, and rows that scroll
// with the movement keys.
type frame[K comparable] struct {
	Common  // Width and Height are the outer size, border included
	rows    list[K]
	focused bool
}

// paneChrome is the lines a pane spends on its border, title and column
// header.
const paneChrome = 4

// SetSize sets the pane's outer size.
func (f *frame[K]) SetSize(w, h int) {
	f.Common.SetSize(w, h)
	f.rows.SetHeight(h - paneChrome)
}

// SetFocused says whether the pane has the focus.
func (f *frame[K]) SetFocused(focused bool) { f.focused = focused }

// Update moves the cursor on the movement keys.
func (f *frame[K]) Update(msg tea.Msg) tea.Cmd {
	k, ok := msg.(tea.KeyMsg)
	if !ok {
		return nil
	}
	keys := f.Keys
	switch {
	case key.Matches(k, keys.Up):
		f.rows.Move(-1)
	case key.Matches(k, keys.Down):
		f.rows.Move(1)
	case key.Matches(k, keys.PageUp):
		f.rows.Move(-max(f.rows.height, 1))
	case key.Matches(k, keys.PageDown):
		f.rows.Move(max(f.rows.height, 1))
	case key.Matches(k, keys.Top):
		f.rows.Top()
	case key.Matches(k, keys.Bottom):
		f.rows.Bottom()
	}
	return nil
}

// render draws the pane: border, title, column header, then the visible
// rows drawn by line(i).
func (f *frame[K]) render(title, colHeader, empty string, line func(i int) string) string {
	inner := max(f.Width-2, 0)
	lines := make([]string, 0, max(f.Height-2, 0))
	lines = append(lines, cell(f.Styles.PaneTitle.Render(title), inner), f.Styles.ColHeader.Render(cell(colHeader, inner)))
	start, end := f.rows.Window()
	if start == end && empty != "" {
		lines = append(lines, f.Styles.Dim.Render(cell("  "+empty, inner)))
	}
	for i := start; i < end; i++ {
		marker := "  "
		text := line(i)
		if i == f.rows.cursor {
			// The cells' own colours would fight the row's style.
			text = ansi.Strip(text)
			if f.focused {
				marker = "▸ "
				text = f.Styles.Selected.Render(text)
			} else {
				text = f.Styles.Cursor.Render(text)
			}
		}
		lines = append(lines, cell(marker+text, inner))
	}
	for len(lines) < f.Height-2 {
		lines = append(lines, strings.Repeat(" ", inner))
	}
	style := f.Styles.Pane
	if f.focused {
		style = f.Styles.PaneFocus
	}
	return box(lines[:max(f.Height-2, 0)], inner, style)
}

// box draws style's border around lines, each exactly inner cells wide: what
// style.Render would draw, without measuring every line again (a pane's
// frame is drawn up to ten times a second).
func box(lines []string, inner int, style lipgloss.Style) string {
	b := style.GetBorderStyle()
	edge := style.UnsetBorderStyle().UnsetPadding().UnsetMargins().Foreground(style.GetBorderTopForeground())
	left, right := edge.Render(b.Left), edge.Render(b.Right)
	var out strings.Builder
	out.Grow((len(lines) + 2) * (inner + 16))
	out.WriteString(edge.Render(b.TopLeft + strings.Repeat(b.Top, inner) + b.TopRight))
	for _, l := range lines {
		out.WriteString("\n" + left + l + right)
	}
	out.WriteString("\n" + edge.Render(b.BottomLeft+strings.Repeat(b.Bottom, inner)+b.BottomRight))
	return out.String()
}

// devicesPane lists devices: all of them, or only the available ones.
type devicesPane struct {
	frame[string]
	available bool
}

func newDevicesPane(c Common, available bool) *devicesPane {
	return &devicesPane{frame: frame[string]{Common: c}, available: available}
}

var (
	// The device panes keep the state (and the sort column) however
	// narrow; the pairs pane keeps the message counts.
	allDeviceCols = []column{
		{key: "id", title: "ID"}, {key: "state", title: "STATE", width: 16, min: 9},
		{key: "up", title: "UP", width: 5, drop: 2}, {key: "transport", title: "TRANSPORT", width: 9, drop: 3},
		{key: "client", title: "CLIENT", width: 9, drop: 4}, {key: "addr", title: "ADDRESS", width: 21, drop: 5},
	}
	availableCols = []column{
		{key: "id", title: "ID"}, {key: "up", title: "UP", width: 5, drop: 1},
		{key: "transport", title: "TRANSPORT", width: 9, drop: 3}, {key: "client", title: "CLIENT", width: 9, drop: 4},
		{key: "addr", title: "ADDRESS", width: 21, drop: 5},
	}
	pairCols = []column{
		{key: "pair", title: "A (ASKED) ↔ B"}, {key: "msgs", title: "MSGS", width: 7, min: 4},
		{key: "rate", title: "MSG/S", width: 6, drop: 2}, {key: "since", title: "SINCE", width: 5, drop: 3},
	}
	// sortCols is the column each order sorts by, shown kept next to the id.
	sortCols = map[sortOrder]column{
		byUptime:   {key: "up", title: "UP", width: 5},
		byRate:     {key: "rate", title: "MSG/S", width: 6, min: 5},
		byRefusals: {key: "refusals", title: "REFUSED", width: 7, min: 4},
	}
)

// markerWidth is the room the selection marker takes before each row.
const markerWidth = 2

// withSortColumn returns cols with the current order's column kept right
// after the id (moved there when cols has it already).
func withSortColumn(cols []column, order sortOrder) []column {
	sc, ok := sortCols[order]
	if !ok {
		return cols
	}
	out := make([]column, 0, len(cols)+1)
	out = append(out, cols[0], sc)
	for _, c := range cols[1:] {
		if c.key != sc.key {
			out = append(out, c)
		}
	}
	return out
}

// withNodeColumn returns cols with the devices' node after the column
// keyed after, as wide as the longest node id: on a cluster, it goes when
// room is short after the optional columns but the uptime. The state
// column gives up some of its room for it.
func withNodeColumn(cols []column, after string, nodes []adminapi.Node) []column {
	w := 8
	if len(nodes) > 0 {
		w = 4
		for _, n := range nodes {
			w = max(w, ansi.StringWidth(n.ID))
		}
	}
	nc := column{key: "node", title: "NODE", width: min(w, 16), min: 4, drop: 1}
	out := make([]column, 0, len(cols)+1)
	for _, c := range cols {
		if c.key == "state" {
			c.width = 12
		}
		out = append(out, c)
		if c.key == after {
			out = append(out, nc)
		}
	}
	return out
}

// Refresh takes the devices that pass the filter, or only the available
// ones among them.
func (p *devicesPane) Refresh() {
	if p.available {
		p.rows.SetItems(p.data.availIDs)
		return
	}
	p.rows.SetItems(p.data.devices)
}

// SelectedDevice returns the device under the cursor.
func (p *devicesPane) SelectedDevice() (string, bool) { return p.rows.Selected() }

// SelectedPair returns the pair of the device under the cursor.
func (p *devicesPane) SelectedPair() (*adminapi.Pair, bool) { return p.data.pairOf(p.rows.Selected()) }

func (p *devicesPane) View() string {
	d := p.data
	cols := allDeviceCols
	title, short := "All devices", "All"
	nodeAfter := "state"
	if p.available {
		cols, title, short = availableCols, "Available", "Avail."
		nodeAfter = "up"
	}
	if d.state != nil && d.state.Clustered() {
		cols = withNodeColumn(cols, nodeAfter, d.state.Nodes)
	}
	cols = fitColumns(withSortColumn(cols, d.order), p.Width-2-markerWidth, p.idWidth())
	empty := emptyText(d, "no devices", "no device")
	order := " · by " + d.order.String()
	if t := countTitle(title, len(p.rows.items), d.filter) + order; ansi.StringWidth(t) <= p.Width-2 {
		title = t
	} else {
		title = countTitle(short, len(p.rows.items), d.filter) + order
	}
	return p.render(title, "  "+titles(cols), empty, func(i int) string {
		dev := d.state.Devices[p.rows.items[i]]
		if dev == nil {
			return ""
		}
		return row(cols, func(key string) string { return p.value(dev, key) })
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

func (p *devicesPane) value(dev *adminapi.Device, key string) string {
	switch key {
	case "id":
		return dev.ID
	case "state":
		return p.Styles.deviceState(dev)
	case "rate":
		return p.data.rate(p.data.state.DeviceRates[dev.ID])
	case "refusals":
		return fmt.Sprint(dev.Refusals)
	case "up":
		return age(p.data.now, dev.ConnectedAt)
	case "transport":
		return dev.Transport
	case "client":
		return fmt.Sprintf("%s/%d", dev.Generation, dev.EngineIO)
	case "addr":
		return dev.Address
	case "node":
		return dev.Node
	}
	return ""
}

// pairsPane lists the live pairs with their message counts and rates.
type pairsPane struct {
	frame[string]
	all    []string // every pair's A, sorted, at the last Refresh without a filter
	filter string   // the filter of the last Refresh
}

func newPairsPane(c Common) *pairsPane { return &pairsPane{frame: frame[string]{Common: c}} }

// Refresh takes the pairs either side of which passes the filter, sorted
// by their asking side.
func (p *pairsPane) Refresh() {
	st, f := p.data.state, p.data.filter
	if st == nil {
		p.rows.SetItems(nil)
		return
	}
	match := func(pr *adminapi.Pair) bool {
		return f == "" || strings.Contains(strings.ToLower(pr.A), f) || strings.Contains(strings.ToLower(pr.B), f)
	}
	// In the last order first: sorting again costs little when few moved.
	pairs := make([]string, 0, len(st.Pairs))
	kept := 0
	for _, a := range p.all {
		if pr, ok := st.Pairs[a]; ok {
			kept++
			if match(pr) {
				pairs = append(pairs, a)
			}
		}
	}
	if kept != len(st.Pairs) || f != p.filter {
		pairs = pairs[:0]
		for a, pr := range st.Pairs {
			if match(pr) {
				pairs = append(pairs, a)
			}
		}
	}
	slices.Sort(pairs)
	if f == "" {
		p.all = pairs
	}
	p.filter = f
	p.rows.SetItems(pairs)
}

// SelectedPair returns the pair under the cursor.
func (p *pairsPane) SelectedPair() (*adminapi.Pair, bool) { return p.data.pairOf(p.rows.Selected()) }

func (p *pairsPane) View() string {
	d := p.data
	need := 16
	start, end := p.rows.Window()
	for _, a := range p.rows.items[start:end] {
		if pr := d.state.Pairs[a]; pr != nil {
			need = max(need, ansi.StringWidth(pairName(pr)))
		}
	}
	cols := fitColumns(pairCols, p.Width-2-markerWidth, min(need, 40))
	empty := emptyText(d, "no pairs", "no pair")
	return p.render(countTitle("Pairs", len(p.rows.items), d.filter), "  "+titles(cols), empty, func(i int) string {
		pr := d.state.Pairs[p.rows.items[i]]
		if pr == nil {
			return ""
		}
		return row(cols, func(key string) string {
			switch key {
			case "pair":
				return pairName(pr)
			case "msgs":
				return fmt.Sprint(pr.Messages)
			case "rate":
				return d.rate(d.state.PairRates[pr.A])
			case "since":
				return age(d.now, pr.Since)
			}
			return ""
		})
	})
}

// pairName writes a pair as its two sides: "A ↔ B", A the side that asked.
func pairName(p *adminapi.Pair) string { return p.A + " ↔ " + p.B }

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
	return adminapi.Compact(now.Sub(t))
}

// thousands formats n with thin separators: 10,000.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// joinRow lays panes of the same height side by side.
func joinRow(views ...string) string {
	cols := make([][]string, len(views))
	n := 0
	for i, v := range views {
		cols[i] = strings.Split(v, "\n")
		n = max(n, len(cols[i]))
	}
	lines := make([]string, n)
	for i := range lines {
		var b strings.Builder
		for _, c := range cols {
			if i < len(c) {
				b.WriteString(c[i])
			}
		}
		lines[i] = b.String()
	}
	return strings.Join(lines, "\n")
}

// joinLines stacks lines.
func joinLines(lines []string) string { return strings.Join(lines, "\n") }

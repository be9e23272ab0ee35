package tui

import (
	"fmt"
	"sort"
	"strings"

	"github.com/charmbracelet/x/ansi"

	"github.com/p2prelay/p2prelay/admin/adminapi"
)

// sparkWindow is how many per-second samples the sparkline shows.
const sparkWindow = 60

// sparkline keeps the last sparkWindow samples of a rate.
type sparkline struct {
	vals  [sparkWindow]float64
	n     int // samples ever pushed
	ticks []rune
}

func newSparkline() *sparkline {
	return &sparkline{ticks: []rune("▁▂▃▄▅▆▇█")}
}

// Push adds a sample.
func (s *sparkline) Push(v float64) {
	s.vals[s.n%sparkWindow] = v
	s.n++
}

// Render draws the last n kept samples (at most sparkWindow), oldest
// first, scaled to their peak, padded to n cells; it also returns the peak.
func (s *sparkline) Render(n int) (string, float64) {
	n = min(max(n, 0), sparkWindow)
	kept := min(s.n, n)
	peak := s.Peak(n)
	var b strings.Builder
	b.WriteString(strings.Repeat(" ", n-kept))
	for i := s.n - kept; i < s.n; i++ {
		level := 0
		if peak > 0 {
			level = int(s.vals[i%sparkWindow] / peak * float64(len(s.ticks)-1))
		}
		b.WriteRune(s.ticks[level])
	}
	return b.String(), peak
}

// Peak is the largest of the last n values (n at most sparkWindow).
func (s *sparkline) Peak(n int) float64 {
	kept := min(s.n, min(max(n, 0), sparkWindow))
	peak := 0.0
	for i := s.n - kept; i < s.n; i++ {
		peak = max(peak, s.vals[i%sparkWindow])
	}
	return peak
}

// header is the top of the screen: the connection's state, the counters
// and the sparkline of relayed messages per second.
type header struct {
	Common
	url    string
	status adminapi.Status
	err    error
	spark  *sparkline
}

func newHeader(c Common, url string) *header {
	return &header{Common: c, url: url, status: adminapi.StatusConnecting, spark: newSparkline()}
}

// headerHeight is the lines the header takes on a wide screen; a narrow one
// wraps it onto more.
const headerHeight = 3

// SetStatus follows the connection's state.
func (h *header) SetStatus(status adminapi.Status, err error) { h.status, h.err = status, err }

// AddRate adds a messages-per-second sample to the sparkline.
func (h *header) AddRate(perSec float64) { h.spark.Push(perSec) }

func (h *header) View() string { return strings.Join(h.Lines(), "\n") }

// maxHeaderLines bounds the header, however narrow the screen.
const maxHeaderLines = 6

// Lines draws the header, each line fitted to the width: the connection's
// state, then the counters, wrapped between items rather than cut, then
// the sparkline.
func (h *header) Lines() []string {
	s := h.Styles
	var status string
	switch h.status {
	case adminapi.StatusLive:
		status = s.Live.Render("● live")
	case adminapi.StatusConnecting:
		status = s.Warn.Render("○ connecting…")
	case adminapi.StatusUnauthorized:
		status = s.Bad.Render("✖ token refused by the relay; press t to enter it (or restart with --token)")
	default:
		msg := "✖ relay down; retrying"
		if h.err != nil {
			msg = fmt.Sprintf("✖ relay down (%v); retrying", h.err)
		}
		status = s.Bad.Render(msg)
	}
	sep := s.Dim.Render(" · ")
	lines := wrapItems([]string{s.Title.Render("p2pctl"), s.Dim.Render(h.url), status}, sep, h.Width)

	if st := h.data.state; st != nil {
		c := s.Counter.Render
		rate := func(v float64) string { return c(h.data.rate(v)) + "/s" }
		lines = append(lines, wrapItems([]string{
			"devices " + c(thousands(len(st.Devices))),
			"available " + c(thousands(h.data.available)),
			"pairs " + c(thousands(len(st.Pairs))),
			"msgs " + c(fmt.Sprint(st.Stats.Messages)) + " (" + rate(st.Stats.MessagesPerSec) + ")",
			"acks " + c(fmt.Sprint(st.Stats.Acks)) + " (" + rate(st.Stats.AcksPerSec) + ")",
			"refusals " + c(fmt.Sprint(st.Stats.TotalRefusals())) + byCode(st.Stats.Refusals),
		}, sep, h.Width)...)
	} else {
		lines = append(lines, cell(s.Dim.Render("no data yet"), h.Width))
	}
	label := "messages/s, last minute "
	tail := fmt.Sprintf(" peak %.1f", h.spark.Peak(sparkWindow))
	spark, _ := h.spark.Render(h.Width - len(label) - len(tail))
	lines = append(lines, cell(s.Dim.Render(label)+s.Spark.Render(spark)+s.Dim.Render(tail), h.Width))
	if len(lines) > maxHeaderLines {
		lines = append(lines[:maxHeaderLines-1], lines[len(lines)-1])
	}
	return lines
}

// wrapItems lays items out on as few lines of width as it can, sep between
// two on a line; an item wider than a line is wrapped itself. Each line is
// padded to width.
func wrapItems(items []string, sep string, width int) []string {
	var lines []string
	cur := ""
	for _, it := range items {
		if cur != "" && ansi.StringWidth(cur+sep+it) <= width {
			cur += sep + it
			continue
		}
		if cur != "" {
			lines = append(lines, cur)
		}
		cur = it
		if ansi.StringWidth(it) > width {
			parts := strings.Split(ansi.Wrap(it, width, " "), "\n")
			lines = append(lines, parts[:len(parts)-1]...)
			cur = parts[len(parts)-1]
		}
	}
	lines = append(lines, cur)
	for i := range lines {
		lines[i] = cell(lines[i], width)
	}
	return lines
}

// byCode lists refusal counts, largest first: " (BUSY 3, OFFLINE 1)".
func byCode(m map[string]uint64) string {
	if len(m) == 0 {
		return ""
	}
	codes := make([]string, 0, len(m))
	for c := range m {
		codes = append(codes, c)
	}
	sort.Slice(codes, func(i, j int) bool {
		if m[codes[i]] != m[codes[j]] {
			return m[codes[i]] > m[codes[j]]
		}
		return codes[i] < codes[j]
	})
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = fmt.Sprintf("%s %d", c, m[c])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

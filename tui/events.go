package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/p2prelay/p2prelay/admin/adminapi"
)

// eventsPane is the scrolling event log, a bounded ring of lines: what the
// stream brought, and how the connection to the relay fared.
type eventsPane struct {
	frame[int]
	log         ring
	lastFailure string           // the failure last logged, so that retries log once
	now         func() time.Time // the time of a failure's line
}

func newEventsPane(c Common, size int, now func() time.Time) *eventsPane {
	p := &eventsPane{frame: frame[int]{Common: c}, log: newRing(size), now: now}
	p.rows.follow = true
	return p
}

// Status logs a connection failure, once: not again at every retry, only
// when it changes or after a sync. It reports whether it logged a line.
func (p *eventsPane) Status(status adminapi.Status, err error) bool {
	var text string
	switch status {
	case adminapi.StatusLive, adminapi.StatusConnecting:
		return false
	case adminapi.StatusUnauthorized:
		text = "the relay refused the admin token"
	default:
		text = "relay down: " + errText(err)
	}
	if text == p.lastFailure {
		return false
	}
	p.lastFailure = text
	p.log.Push(logEntry{time: p.now(), text: text})
	return true
}

// Synced logs a (re)sync.
func (p *eventsPane) Synced(snap *adminapi.Snapshot) {
	p.lastFailure = ""
	p.log.Push(logEntry{time: snap.Time, text: "synced: " + plural(len(snap.Devices), "device") + ", " + plural(len(snap.Pairs), "pair")})
}

// Delta logs a change, for the filter under the ids it names.
func (p *eventsPane) Delta(d adminapi.Delta) {
	ids := []string{strings.ToLower(d.ID)}
	if d.Peer != "" {
		ids = append(ids, strings.ToLower(d.Peer))
	}
	p.log.Push(logEntry{time: d.Time, text: d.Summary(), ids: ids})
}

// Refresh recomputes the visible entries for the filter. Rows are indexes
// into the ring, newest last.
func (p *eventsPane) Refresh() {
	filter := p.data.filter
	items := p.rows.items[:0:0]
	p.log.Each(func(n int, e *logEntry) {
		if filter == "" || e.mentions(filter) {
			items = append(items, n)
		}
	})
	p.rows.SetItems(items)
}

func (p *eventsPane) View() string {
	d := p.data
	title := "Events"
	if p.rows.cursor >= len(p.rows.items)-1 {
		title += " (following)"
	}
	if d.filter != "" {
		title += fmt.Sprintf("  filter %q", d.filter)
	}
	inner := p.Width - 2 - markerWidth
	return p.render(title, "  TIME     WHAT", emptyText(d, "no events yet", "no event"), func(i int) string {
		e := p.log.At(p.rows.items[i])
		if e == nil {
			return ""
		}
		return cell(e.time.UTC().Format("15:04:05")+" "+e.text, inner)
	})
}

func errText(err error) string {
	if err == nil {
		return "unknown error"
	}
	return err.Error()
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

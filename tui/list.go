package tui

import (
	"slices"
	"strings"

	"github.com/charmbracelet/x/ansi"
)

// list is the scrolling part of a pane: the keys of its rows, a cursor and
// the window of rows that fit. Only the rows in the window are ever drawn,
// whatever the number of items.
type list[K comparable] struct {
	items  []K
	cursor int
	offset int  // first visible row
	height int  // visible rows
	follow bool // keep the cursor on the last item as items arrive (event log)
}

// SetHeight sets how many rows are visible.
func (l *list[K]) SetHeight(h int) {
	l.height = max(h, 0)
	l.clamp()
}

// SetItems replaces the rows, keeping the cursor on the same key when it is
// still there.
func (l *list[K]) SetItems(items []K) {
	sel, had := l.Selected()
	atEnd := l.cursor >= len(l.items)-1
	l.items = items
	switch {
	case l.follow && atEnd:
		l.cursor = len(items) - 1
	case had:
		if i := indexOf(items, sel, l.cursor); i >= 0 {
			l.cursor = i
		}
	}
	l.clamp()
}

// indexOf finds key, looking at hint first (rows mostly stay put).
func indexOf[K comparable](items []K, key K, hint int) int {
	if hint >= 0 && hint < len(items) && items[hint] == key {
		return hint
	}
	for i, it := range items {
		if it == key {
			return i
		}
	}
	return -1
}

// Move moves the cursor by n rows.
func (l *list[K]) Move(n int) {
	l.cursor += n
	l.clamp()
}

// Top and Bottom jump to the first and last row.
func (l *list[K]) Top()    { l.cursor = 0; l.clamp() }
func (l *list[K]) Bottom() { l.cursor = len(l.items) - 1; l.clamp() }

// Selected returns the key under the cursor.
func (l *list[K]) Selected() (K, bool) {
	if l.cursor < 0 || l.cursor >= len(l.items) {
		var zero K
		return zero, false
	}
	return l.items[l.cursor], true
}

// Window returns the visible rows, [start, end).
func (l *list[K]) Window() (int, int) {
	return l.offset, min(l.offset+l.height, len(l.items))
}

func (l *list[K]) clamp() {
	if l.cursor >= len(l.items) {
		l.cursor = len(l.items) - 1
	}
	if l.cursor < 0 {
		l.cursor = 0
	}
	if l.cursor < l.offset {
		l.offset = l.cursor
	}
	if l.height > 0 && l.cursor >= l.offset+l.height {
		l.offset = l.cursor - l.height + 1
	}
	if maxOff := len(l.items) - l.height; l.offset > maxOff {
		l.offset = max(maxOff, 0)
	}
}

// column is one column of a pane's table.
type column struct {
	key   string
	title string
	width int // 0: takes the room left (one flexible column per table)
	min   int // the least it shrinks to when room is short; 0: width
	drop  int // optional columns (drop > 0) go when room is short, highest first; 0: always kept
}

// fitColumns returns the columns that fit in width, with their widths. The
// flexible column wants need cells: optional columns go, highest drop
// first, until it has them; if it still has not, the columns kept shrink
// toward their min to make room for it.
func fitColumns(cols []column, width, need int) []column {
	kept := slices.Clone(cols)
	used := func() int {
		n := len(kept) - 1 // the spaces between columns
		for _, c := range kept {
			n += c.width
		}
		return n
	}
	for width-used() < need {
		worst := -1
		for i, c := range kept {
			if c.width > 0 && c.drop > 0 && (worst < 0 || c.drop > kept[worst].drop) {
				worst = i
			}
		}
		if worst < 0 {
			break
		}
		kept = slices.Delete(kept, worst, worst+1)
	}
	for short := need - (width - used()); short > 0; short-- {
		widest := -1
		for i, c := range kept {
			if slack := c.width - max(c.min, 1); c.width > 0 && c.min > 0 && slack > 0 && (widest < 0 || slack > kept[widest].width-kept[widest].min) {
				widest = i
			}
		}
		if widest < 0 {
			break
		}
		kept[widest].width--
	}
	left := width - used()
	for i := range kept {
		if kept[i].width == 0 {
			kept[i].width = max(left, 1)
		}
	}
	return kept
}

// cell fits s into exactly w cells: cut with an ellipsis, or padded.
func cell(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if n := width(s); n <= w {
		return s + strings.Repeat(" ", w-n)
	}
	return ansi.Truncate(s, w, "…")
}

// width is the cells s takes: its length when it is plain ASCII, as most
// cells are, else what ansi.StringWidth measures.
func width(s string) int {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x80 || c < 0x20 {
			return ansi.StringWidth(s)
		}
	}
	return len(s)
}

// row joins the cells of cols, each fitted to its width; value gives a
// column's cell by key.
func row(cols []column, value func(key string) string) string {
	var b strings.Builder
	for i, c := range cols {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(cell(value(c.key), c.width))
	}
	return b.String()
}

// titles is the column titles of cols.
func titles(cols []column) string {
	return row(cols, func(key string) string {
		for _, c := range cols {
			if c.key == key {
				return c.title
			}
		}
		return ""
	})
}

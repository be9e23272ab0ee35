package tui

import (
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/x/ansi"
)

// helpScreen takes the place of the panes while the operator reads the
// keys: every binding of the key map, laid out in as many columns as the
// width allows (so that none is cut off), then a few words on what the
// commands do.
type helpScreen struct {
	Common
}

func newHelpScreen(c Common) *helpScreen { return &helpScreen{Common: c} }

// helpText follows the keys on the help screen.
const helpText = "enter opens a device's detail and live traffic (esc goes back); s sorts the devices by id, " +
	"uptime, message rate or refusals. K kicks the selected device, u breaks its pair: both ask first. " +
	"The filter matches ids in every pane and the event log."

func (h *helpScreen) View() string {
	inner := max(h.Width-4, 1)
	keys := keyColumns(h.Keys.FullHelp(), h.Styles, inner)
	prose := strings.Split(ansi.Wordwrap(helpText, inner, ""), "\n")
	lines := append([]string{h.Styles.PaneTitle.Render("Keys"), ""}, keys...)
	if len(lines)+len(prose)+3 <= h.Height {
		lines = append(append(lines, ""), prose...)
	}
	lines = append(lines, "", "Any key goes back.")
	out := make([]string, h.Height)
	for i := range out {
		text := ""
		if i < len(lines) {
			text = "  " + lines[i]
		}
		out[i] = cell(text, h.Width)
	}
	return strings.Join(out, "\n")
}

// keyColumns lays the bindings out in the most columns that fit width,
// filled down then across, each a key column and a description column.
func keyColumns(groups [][]key.Binding, st *Styles, width int) []string {
	var all []key.Binding
	for _, g := range groups {
		all = append(all, g...)
	}
	const gap = 3
	for cols := 3; ; cols-- {
		rows := (len(all) + cols - 1) / cols
		keyW, descW := make([]int, cols), make([]int, cols)
		for i, b := range all {
			c := i / rows
			keyW[c] = max(keyW[c], ansi.StringWidth(b.Help().Key))
			descW[c] = max(descW[c], ansi.StringWidth(b.Help().Desc))
		}
		total := 0
		for c := range cols {
			total += keyW[c] + 1 + descW[c] + gap
		}
		if total-gap > width && cols > 1 {
			continue
		}
		lines := make([]string, rows)
		for r := range rows {
			var b strings.Builder
			for c := range cols {
				i := c*rows + r
				if i >= len(all) {
					break
				}
				if c > 0 {
					b.WriteString(strings.Repeat(" ", gap))
				}
				h := all[i].Help()
				b.WriteString(st.Help.FullKey.Render(cell(h.Key, keyW[c])) + " " + st.Help.FullDesc.Render(cell(h.Desc, descW[c])))
			}
			lines[r] = strings.TrimRight(b.String(), " ")
		}
		return lines
	}
}

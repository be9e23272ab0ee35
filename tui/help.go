package tui

import (
	"strings"

	"github.com/charmbracelet/bubbles/help"
)

// helpScreen takes the place of the panes while the operator reads the
// keys: the full help, generated from the key map.
type helpScreen struct {
	Common
	help help.Model
}

func newHelpScreen(c Common) *helpScreen {
	h := &helpScreen{Common: c, help: help.New()}
	h.help.Styles = c.Styles.Help
	h.help.ShowAll = true
	return h
}

func (h *helpScreen) SetSize(w, ht int) {
	h.Common.SetSize(w, ht)
	h.help.Width = w
}

func (h *helpScreen) View() string {
	text := "Keys\n\n" + h.help.View(h.Keys) + "\n\n" +
		"K kicks the selected device; u breaks the selected pair (or the selected device's pair).\n" +
		"Both ask for confirmation. The filter matches device ids, in every pane and the event log.\n\n" +
		"Press any key to go back."
	body := h.Styles.HelpScreen.Width(h.Width).Render(text)
	lines := strings.Split(body, "\n")
	for len(lines) < h.Height {
		lines = append(lines, "")
	}
	for i := range lines {
		lines[i] = cell(lines[i], h.Width)
	}
	return strings.Join(lines[:h.Height], "\n")
}

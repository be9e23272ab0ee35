package tui

import (
	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/lipgloss"

	"github.com/p2prelay/p2prelay/admin/adminapi"
)

// Styles is every style the dashboard draws with. Build it with
// DefaultStyles; colours vanish by themselves on a terminal (or renderer)
// without colour.
type Styles struct {
	Title      lipgloss.Style
	Dim        lipgloss.Style
	Live       lipgloss.Style
	Warn       lipgloss.Style
	Bad        lipgloss.Style
	Counter    lipgloss.Style
	Spark      lipgloss.Style
	Pane       lipgloss.Style // a pane's frame
	PaneFocus  lipgloss.Style // the focused pane's frame
	PaneTitle  lipgloss.Style
	ColHeader  lipgloss.Style
	Selected   lipgloss.Style // the selected row of the focused pane
	Cursor     lipgloss.Style // the selected row of another pane
	Available  lipgloss.Style
	Paired     lipgloss.Style
	Away       lipgloss.Style // a paired device waiting out its resume window
	Prompt     lipgloss.Style
	Notice     lipgloss.Style
	Help       help.Styles
	HelpScreen lipgloss.Style
}

// DefaultStyles returns the dashboard's styles for renderer r.
func DefaultStyles(r *lipgloss.Renderer) Styles {
	accent := lipgloss.AdaptiveColor{Light: "#5A56E0", Dark: "#7D79F6"}
	dim := lipgloss.AdaptiveColor{Light: "#8A8A8A", Dark: "#777777"}
	green := lipgloss.AdaptiveColor{Light: "#1E8A3A", Dark: "#3FD16B"}
	yellow := lipgloss.AdaptiveColor{Light: "#A66A00", Dark: "#E6B450"}
	red := lipgloss.AdaptiveColor{Light: "#C0262D", Dark: "#FF5F5F"}
	s := Styles{
		Title:      r.NewStyle().Bold(true).Foreground(accent),
		Dim:        r.NewStyle().Foreground(dim),
		Live:       r.NewStyle().Bold(true).Foreground(green),
		Warn:       r.NewStyle().Bold(true).Foreground(yellow),
		Bad:        r.NewStyle().Bold(true).Foreground(red),
		Counter:    r.NewStyle().Bold(true),
		Spark:      r.NewStyle().Foreground(accent),
		Pane:       r.NewStyle().Border(lipgloss.RoundedBorder()).BorderForeground(dim),
		PaneFocus:  r.NewStyle().Border(lipgloss.ThickBorder()).BorderForeground(accent),
		PaneTitle:  r.NewStyle().Bold(true),
		ColHeader:  r.NewStyle().Foreground(dim),
		Selected:   r.NewStyle().Reverse(true).Bold(true),
		Cursor:     r.NewStyle().Underline(true),
		Available:  r.NewStyle().Foreground(green),
		Away:       r.NewStyle().Foreground(yellow),
		Paired:     r.NewStyle().Foreground(accent),
		Prompt:     r.NewStyle().Bold(true).Foreground(yellow),
		Notice:     r.NewStyle().Foreground(accent),
		HelpScreen: r.NewStyle().Padding(1, 2),
	}
	s.Help = help.Styles{
		Ellipsis:       s.Dim,
		ShortKey:       r.NewStyle().Bold(true),
		ShortDesc:      s.Dim,
		ShortSeparator: s.Dim,
		FullKey:        r.NewStyle().Bold(true),
		FullDesc:       r.NewStyle(),
		FullSeparator:  s.Dim,
	}
	return s
}

// deviceState is a device's state in a few words, coloured by what it is.
func (s *Styles) deviceState(d *adminapi.Device) string {
	text := d.State()
	switch {
	case d.Away:
		return s.Away.Render(text)
	case d.Peer != "":
		return s.Paired.Render(text)
	case d.Pairing != "":
		return text
	}
	return s.Available.Render(text)
}

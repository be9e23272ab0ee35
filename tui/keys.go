package tui

import (
	"strings"

	"github.com/charmbracelet/bubbles/key"
)

// KeyMap is every key the dashboard answers to; the help screen is
// generated from it, and each binding's help names every key it takes.
type KeyMap struct {
	NextPane key.Binding
	PrevPane key.Binding
	Up       key.Binding
	Down     key.Binding
	PageUp   key.Binding
	PageDown key.Binding
	Top      key.Binding
	Bottom   key.Binding
	Open     key.Binding
	Back     key.Binding
	Sort     key.Binding
	Filter   key.Binding
	Clear    key.Binding
	Kick     key.Binding
	Unpair   key.Binding
	Token    key.Binding
	Help     key.Binding
	Quit     key.Binding

	// In a confirmation prompt.
	Yes key.Binding
	No  key.Binding
	// While typing a filter or a token.
	Apply  key.Binding
	Cancel key.Binding
}

// DefaultKeyMap returns the dashboard's keys. Kick is K (shift-k) because
// k moves up, as in every vi-style list.
func DefaultKeyMap() KeyMap {
	return KeyMap{
		NextPane: binding("next pane", "tab"),
		PrevPane: binding("previous pane", "shift+tab"),
		Up:       binding("up", "up", "k"),
		Down:     binding("down", "down", "j"),
		PageUp:   binding("page up", "pgup", "ctrl+b"),
		PageDown: binding("page down", "pgdown", "ctrl+f"),
		Top:      binding("first", "home", "g"),
		Bottom:   binding("last (log: follow)", "end", "G"),
		Open:     binding("device detail", "enter"),
		Back:     binding("back from the detail", "esc"),
		Sort:     binding("sort devices", "s"),
		Filter:   binding("filter by id", "/"),
		Clear:    binding("clear filter", "esc"),
		Kick:     binding("kick device", "K"),
		Unpair:   binding("break pair", "u"),
		Token:    binding("enter admin token", "t"),
		Help:     binding("help", "?"),
		Quit:     binding("quit", "q", "ctrl+c"),
		Yes:      binding("confirm", "y", "Y", "enter"),
		No:       binding("cancel", "n", "N", "esc"),
		Apply:    binding("typing: done", "enter"),
		Cancel:   binding("typing: clear it", "esc"),
	}
}

// binding is a key binding whose help names all its keys.
func binding(desc string, keys ...string) key.Binding {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = keyName(k)
	}
	return key.NewBinding(key.WithKeys(keys...), key.WithHelp(strings.Join(names, "/"), desc))
}

// keyName is how the help writes a key.
func keyName(k string) string {
	switch k {
	case "up":
		return "↑"
	case "down":
		return "↓"
	case "pgdown":
		return "pgdn"
	}
	return k
}

// ShortHelp is the one-line help in the footer.
func (k KeyMap) ShortHelp() []key.Binding {
	return []key.Binding{k.NextPane, k.Open, k.Sort, k.Filter, k.Kick, k.Unpair, k.Help, k.Quit}
}

// DetailHelp is the one-line help under a device's detail.
func (k KeyMap) DetailHelp() []key.Binding {
	return []key.Binding{k.Back, k.Up, k.Down, k.Kick, k.Unpair, k.Help, k.Quit}
}

// FullHelp is the help screen: every binding, in groups.
func (k KeyMap) FullHelp() [][]key.Binding {
	return [][]key.Binding{
		{k.NextPane, k.PrevPane, k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom},
		{k.Open, k.Back, k.Sort, k.Filter, k.Clear, k.Kick, k.Unpair, k.Token},
		{k.Yes, k.No, k.Apply, k.Cancel, k.Help, k.Quit},
	}
}

package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
)

// The bottom line of the screen is one of three components: the footer,
// the filter being typed, or a command waiting for confirmation.

// footer is the bottom line at rest: the last command's outcome, the
// filter in force and the short help.
type footer struct {
	Common
	help   help.Model
	notice string // the last command's outcome
}

func newFooter(c Common) *footer {
	f := &footer{Common: c, help: help.New()}
	f.help.Styles = c.Styles.Help
	return f
}

func (f *footer) SetSize(w, h int) {
	f.Common.SetSize(w, h)
	f.help.Width = w
}

// SetNotice shows what the last command did.
func (f *footer) SetNotice(s string) { f.notice = s }

func (f *footer) View() string {
	st := f.Styles
	s := f.help.ShortHelpView(f.Keys.ShortHelp())
	if f.data.filter != "" {
		s = st.Notice.Render(fmt.Sprintf("filter %q", f.data.filter)) + st.Dim.Render(" (esc clears) · ") + s
	}
	if f.notice != "" {
		s = st.Notice.Render(f.notice) + st.Dim.Render(" · ") + s
	}
	return cell(s, f.Width)
}

// filterInput is the id filter being typed.
type filterInput struct {
	Common
	input textinput.Model
}

func newFilterInput(c Common) *filterInput {
	in := textinput.New()
	in.Prompt = "/"
	in.Placeholder = "device id"
	in.CharLimit = 128
	_ = in.Cursor.SetMode(cursor.CursorStatic)
	return &filterInput{Common: c, input: in}
}

// Focus opens the filter for typing.
func (f *filterInput) Focus() tea.Cmd { return f.input.Focus() }

// Focused reports whether the filter is open for typing.
func (f *filterInput) Focused() bool { return f.input.Focused() }

// Update handles a message while the filter is open: enter keeps the
// filter and esc clears it, both closing it; anything else edits it.
func (f *filterInput) Update(msg tea.Msg) tea.Cmd {
	if k, ok := msg.(tea.KeyMsg); ok {
		switch {
		case key.Matches(k, f.Keys.Apply):
			f.input.Blur()
			return nil
		case k.Type == tea.KeyEsc:
			f.input.Blur()
			f.Clear()
			return nil
		}
	}
	var cmd tea.Cmd
	f.input, cmd = f.input.Update(msg)
	return cmd
}

// Clear empties the filter.
func (f *filterInput) Clear() { f.input.SetValue("") }

// Value is the filter as the panes apply it: trimmed, in lower case.
func (f *filterInput) Value() string { return strings.ToLower(strings.TrimSpace(f.input.Value())) }

func (f *filterInput) View() string {
	return cell(f.input.View()+f.Styles.Dim.Render("  enter keep · esc clear"), f.Width)
}

// pending is a command waiting for the operator's confirmation.
type pending struct {
	command string // adminapi.CommandKick or adminapi.CommandUnpair
	id      string
	prompt  string
}

// confirmPrompt asks the operator to confirm a command.
type confirmPrompt struct {
	Common
	pending pending
}

func newConfirmPrompt(c Common) *confirmPrompt { return &confirmPrompt{Common: c} }

// Ask shows p's prompt.
func (c *confirmPrompt) Ask(p pending) { c.pending = p }

// Answer reads the operator's key: answered is false for a key that is
// neither yes nor no (the prompt stays); yes says which it was.
func (c *confirmPrompt) Answer(msg tea.KeyMsg) (p pending, yes, answered bool) {
	switch {
	case key.Matches(msg, c.Keys.Yes):
		return c.pending, true, true
	case key.Matches(msg, c.Keys.No), key.Matches(msg, c.Keys.Quit):
		return c.pending, false, true
	}
	return c.pending, false, false
}

func (c *confirmPrompt) View() string {
	return cell(c.Styles.Prompt.Render(c.pending.prompt)+c.Styles.Dim.Render("  y confirm · n cancel"), c.Width)
}

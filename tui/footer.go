package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
)

// The bottom line of the screen is one of three components: the footer,
// the filter being typed, or a command waiting for confirmation.

// footer is the bottom line at rest: a notice (the last command's
// outcome, a hint), the filter in force and the short help. A notice lasts
// until the next key or for a few seconds (Config.HintTimeout).
type footer struct {
	Common
	notice   string
	noticeAt time.Time
	detail   bool // a device's detail is open: its keys are the help
}

func newFooter(c Common) *footer { return &footer{Common: c} }

// SetNotice shows a notice from now on.
func (f *footer) SetNotice(s string, now time.Time) { f.notice, f.noticeAt = s, now }

// ClearNotice takes the notice away; it reports whether there was one.
func (f *footer) ClearNotice() bool {
	had := f.notice != ""
	f.notice = ""
	return had
}

// Expire takes away a notice shown for ttl by now; it reports whether it did.
func (f *footer) Expire(now time.Time, ttl time.Duration) bool {
	if f.notice == "" || now.Sub(f.noticeAt) < ttl {
		return false
	}
	return f.ClearNotice()
}

// SetDetail says whether a device's detail is open.
func (f *footer) SetDetail(open bool) { f.detail = open }

func (f *footer) View() string {
	st := f.Styles
	keys := f.Keys.ShortHelp()
	if f.detail {
		keys = f.Keys.DetailHelp()
	}
	var prefix string
	if f.data.filter != "" {
		prefix = st.Notice.Render(fmt.Sprintf("filter %q", f.data.filter)) + st.Dim.Render(" (esc clears) · ")
	}
	if f.notice != "" {
		prefix = st.Notice.Render(f.notice) + st.Dim.Render(" · ") + prefix
	}
	return cell(prefix+shortHelp(keys, f.Styles, f.Width-ansi.StringWidth(prefix)), f.Width)
}

// shortHelp is the one-line help in width: each binding's first key and
// what it does (the help screen lists every key). The last two (help and
// quit) are always there; the others as they fit, in order.
func shortHelp(bindings []key.Binding, st *Styles, width int) string {
	item := func(b key.Binding) string {
		return st.Help.ShortKey.Render(keyName(b.Keys()[0])) + " " + st.Help.ShortDesc.Render(b.Help().Desc)
	}
	sep := st.Help.ShortSeparator.Render(" • ")
	n := len(bindings)
	tail := item(bindings[n-2]) + sep + item(bindings[n-1])
	room := width - ansi.StringWidth(tail)
	var head []string
	for _, b := range bindings[:n-2] {
		it := item(b) + sep
		if room -= ansi.StringWidth(it); room < 0 {
			break
		}
		head = append(head, it)
	}
	return strings.Join(head, "") + tail
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
		case key.Matches(k, f.Keys.Cancel):
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

// tokenInput is the admin token being typed, after the relay refused the
// one p2pctl had. What is typed is not shown.
type tokenInput struct {
	Common
	input textinput.Model
}

func newTokenInput(c Common) *tokenInput {
	in := textinput.New()
	in.Prompt = "admin token: "
	in.Placeholder = "paste it here"
	in.EchoMode = textinput.EchoPassword
	in.EchoCharacter = '•'
	in.CharLimit = 1024
	_ = in.Cursor.SetMode(cursor.CursorStatic)
	return &tokenInput{Common: c, input: in}
}

// Focus opens the input, empty.
func (t *tokenInput) Focus() tea.Cmd {
	t.input.SetValue("")
	return t.input.Focus()
}

// Update handles a key while the input is open. done says it closed: with
// the token typed when entered (trimmed; "" when cancelled or empty).
func (t *tokenInput) Update(msg tea.Msg) (token string, done bool, cmd tea.Cmd) {
	if k, ok := msg.(tea.KeyMsg); ok {
		switch {
		case key.Matches(k, t.Keys.Apply):
			t.input.Blur()
			return strings.TrimSpace(t.input.Value()), true, nil
		case key.Matches(k, t.Keys.Cancel):
			t.input.Blur()
			return "", true, nil
		}
	}
	t.input, cmd = t.input.Update(msg)
	return "", false, cmd
}

func (t *tokenInput) View() string {
	return cell(t.input.View()+t.Styles.Dim.Render("  enter use it · esc cancel"), t.Width)
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

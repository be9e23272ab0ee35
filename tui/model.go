// Package tui is p2pctl's dashboard: a bubbletea program that shows a
// relay's devices, available devices, live pairs and events from the admin
// stream, and lets an operator kick devices and break pairs.
//
// It stays responsive with tens of thousands of devices: stream updates are
// applied to the model as they come but drawn at most ten times a second,
// only the visible rows of each pane are drawn, and the event log is a
// bounded ring.
package tui

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/p2prelay/p2prelay/admin/adminapi"
)

// Commander runs the operator's commands; *adminclient.Subscription is one.
type Commander interface {
	Kick(ctx context.Context, id string) error
	Unpair(ctx context.Context, id string) error
}

// Defaults for Config's zero values.
const (
	DefaultRedraw         = 100 * time.Millisecond
	DefaultLogSize        = 1000
	DefaultCommandTimeout = 10 * time.Second
)

// Config configures the dashboard.
type Config struct {
	// Updates is the admin stream (Subscription.Updates). Required.
	Updates <-chan adminapi.Update
	// Commands runs kick and unpair. Required.
	Commands Commander
	// URL is the relay's address, shown in the header.
	URL string
	// Renderer draws the styles. Default: lipgloss's default renderer.
	Renderer *lipgloss.Renderer
	// Keys and Styles override DefaultKeyMap and DefaultStyles.
	Keys   *KeyMap
	Styles *Styles
	// Redraw is the shortest time between two redraws caused by the
	// stream. Default DefaultRedraw (ten a second).
	Redraw time.Duration
	// LogSize bounds the event log. Default DefaultLogSize.
	LogSize int
	// CommandTimeout bounds one kick or unpair. Default DefaultCommandTimeout.
	CommandTimeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// The panes, in tab order.
const (
	paneAll = iota
	paneAvailable
	panePairs
	paneEvents
	paneCount
)

// mode is what the keys currently do.
type mode int

const (
	modeNormal mode = iota
	modeFilter
	modeConfirm
	modeHelp
)

// pending is a command waiting for the operator's confirmation.
type pending struct {
	command string // adminapi.CommandKick or adminapi.CommandUnpair
	id      string
	prompt  string
}

// Model is the dashboard's root model. Create it with New and run it with
// tea.NewProgram.
type Model struct {
	cfg    Config
	keys   KeyMap
	styles Styles
	help   help.Model
	filter textinput.Model

	mode    mode
	confirm pending
	notice  string // the last command's outcome

	status      adminapi.Status
	statusErr   error
	lastFailure string // the failure last logged, so that retries log once
	data        data
	available   int
	spark       *sparkline

	header    header
	all       *devicesPane
	avail     *devicesPane
	pairs     *pairsPane
	events    *eventsPane
	focus     int
	width     int
	height    int
	dirty     bool   // the rows' data or the filter changed since the panes' rows were built
	stale     bool   // the stream brought something since the last redraw
	frameView string // the last drawn screen; View returns it
	redraws   int    // screens drawn, for tests
}

// New returns the dashboard model.
func New(cfg Config) *Model {
	if cfg.Renderer == nil {
		cfg.Renderer = lipgloss.DefaultRenderer()
	}
	if cfg.Redraw <= 0 {
		cfg.Redraw = DefaultRedraw
	}
	if cfg.LogSize <= 0 {
		cfg.LogSize = DefaultLogSize
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = DefaultCommandTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Model{cfg: cfg, keys: DefaultKeyMap(), status: adminapi.StatusConnecting, spark: newSparkline()}
	if cfg.Keys != nil {
		m.keys = *cfg.Keys
	}
	m.styles = DefaultStyles(cfg.Renderer)
	if cfg.Styles != nil {
		m.styles = *cfg.Styles
	}
	m.help = help.New()
	m.help.Styles = m.styles.Help
	m.filter = textinput.New()
	m.filter.Prompt = "/"
	m.filter.Placeholder = "device id"
	m.filter.CharLimit = 128
	_ = m.filter.Cursor.SetMode(cursor.CursorStatic)
	m.header = header{styles: &m.styles}
	m.all = &devicesPane{frame: frame[string]{styles: &m.styles}}
	m.avail = &devicesPane{frame: frame[string]{styles: &m.styles}, available: true}
	m.pairs = &pairsPane{frame: frame[string]{styles: &m.styles}}
	m.events = newEventsPane(&m.styles, cfg.LogSize)
	m.data.now = cfg.Now()
	m.dirty = true
	return m
}

// Messages the model handles besides bubbletea's own.
type (
	streamMsg       []adminapi.Update
	streamClosedMsg struct{}
	tickMsg         time.Time
	commandDoneMsg  struct {
		command, id string
		err         error
	}
)

// Init starts reading the stream and the redraw clock.
func (m *Model) Init() tea.Cmd {
	return tea.Batch(m.waitForStream(), m.tick())
}

// maxBatch is the most stream updates taken in at once.
const maxBatch = 512

// waitForStream reads the next updates: it blocks for one, then takes
// whatever else is already waiting, so that a burst costs one message.
func (m *Model) waitForStream() tea.Cmd {
	ch := m.cfg.Updates
	return func() tea.Msg {
		u, ok := <-ch
		if !ok {
			return streamClosedMsg{}
		}
		batch := streamMsg{u}
		for len(batch) < maxBatch {
			select {
			case u, ok := <-ch:
				if !ok {
					return batch
				}
				batch = append(batch, u)
			default:
				return batch
			}
		}
		return batch
	}
}

func (m *Model) tick() tea.Cmd {
	return tea.Tick(m.cfg.Redraw, func(t time.Time) tea.Msg { return tickMsg(t) })
}

// Update routes a message to its handler.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.resize(msg.Width, msg.Height)
		m.redraw()
		return m, nil
	case tea.KeyMsg:
		cmd := m.onKey(msg)
		m.redraw()
		return m, cmd
	case streamMsg:
		m.onStream(msg)
		return m, m.waitForStream()
	case streamClosedMsg:
		return m, nil
	case tickMsg:
		if m.dirty || m.stale {
			m.redraw()
		}
		return m, m.tick()
	case commandDoneMsg:
		m.onCommandDone(msg)
		m.redraw()
		return m, nil
	}
	if m.mode == modeFilter {
		var cmd tea.Cmd
		m.filter, cmd = m.filter.Update(msg)
		return m, cmd
	}
	return m, nil
}

// View returns the last drawn screen: drawing happens on keys, resizes and
// the redraw clock, never once per stream update.
func (m *Model) View() string { return m.frameView }

// Redraws reports how many screens were drawn.
func (m *Model) Redraws() int { return m.redraws }

func (m *Model) resize(w, h int) {
	m.width, m.height = w, h
	m.header.SetSize(w)
	m.help.Width = w
	body := max(h-headerHeight-1, 0)
	top := max(body*3/5, paneChrome+1)
	third := w / 3
	m.all.SetSize(third, top)
	m.avail.SetSize(third, top)
	m.pairs.SetSize(w-2*third, top)
	m.events.SetSize(w, max(body-top, 0))
}

// onStream applies stream updates to the data; the screen follows on the
// next tick.
// onStream takes in what the stream brought. Counters alone (the
// once-a-second stats) change what the rows show, not which rows there
// are: they only call for a redraw, not for the rows to be rebuilt.
func (m *Model) onStream(us []adminapi.Update) {
	for _, u := range us {
		m.setStatus(u)
		if u.Snapshot != nil {
			m.resynced(u.Snapshot)
		}
		for _, d := range u.Deltas {
			m.applyDelta(d)
		}
	}
	m.stale = true
}

// log adds an entry to the event log, whose rows then need rebuilding.
func (m *Model) log(e logEntry) {
	m.events.Add(e)
	m.dirty = true
}

// setStatus follows the connection's state; each new failure is logged
// once, not at every retry.
func (m *Model) setStatus(u adminapi.Update) {
	m.status, m.statusErr = u.Status, u.Err
	var text string
	switch u.Status {
	case adminapi.StatusLive, adminapi.StatusConnecting:
		return
	case adminapi.StatusUnauthorized:
		text = "the relay refused the admin token"
	default:
		text = "relay down: " + errText(u.Err)
	}
	if text == m.lastFailure {
		return
	}
	m.lastFailure = text
	m.log(logEntry{time: m.cfg.Now(), text: text})
}

func (m *Model) resynced(snap *adminapi.Snapshot) {
	if m.data.state == nil {
		m.data.state = adminapi.NewState(snap)
	} else {
		m.data.state.Reset(snap)
	}
	m.lastFailure = ""
	m.log(logEntry{time: snap.Time, text: "synced: " + plural(len(snap.Devices), "device") + ", " + plural(len(snap.Pairs), "pair")})
}

func (m *Model) applyDelta(d adminapi.Delta) {
	st := m.data.state
	if st == nil {
		return
	}
	st.Apply(d)
	if d.Kind == adminapi.KindStats {
		if d.Stats != nil {
			m.spark.Push(d.Stats.MessagesPerSec)
		}
		return
	}
	ids := []string{strings.ToLower(d.ID)}
	if d.Peer != "" {
		ids = append(ids, strings.ToLower(d.Peer))
	}
	m.log(logEntry{time: d.Time, text: d.Summary(), ids: ids})
}

// onKey handles a key in the current mode. Several runes in one message
// (keys typed faster than the terminal is read) count as as many keys.
func (m *Model) onKey(msg tea.KeyMsg) tea.Cmd {
	if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 && !msg.Paste {
		var cmds []tea.Cmd
		for _, r := range msg.Runes {
			cmds = append(cmds, m.onKey(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}, Alt: msg.Alt}))
		}
		return tea.Sequence(cmds...)
	}
	switch m.mode {
	case modeFilter:
		return m.onFilterKey(msg)
	case modeConfirm:
		return m.onConfirmKey(msg)
	case modeHelp:
		if key.Matches(msg, m.keys.Quit) {
			return tea.Quit
		}
		m.mode = modeNormal // any other key closes the help
		return nil
	}
	k := m.keys
	switch {
	case key.Matches(msg, k.Quit):
		return tea.Quit
	case key.Matches(msg, k.Help):
		m.mode = modeHelp
	case key.Matches(msg, k.NextPane):
		m.focus = (m.focus + 1) % paneCount
	case key.Matches(msg, k.PrevPane):
		m.focus = (m.focus + paneCount - 1) % paneCount
	case key.Matches(msg, k.Filter):
		m.mode = modeFilter
		return m.filter.Focus()
	case key.Matches(msg, k.Clear):
		m.clearFilter()
	case key.Matches(msg, k.Kick):
		m.askKick()
	case key.Matches(msg, k.Unpair):
		m.askUnpair()
	default:
		m.move(msg)
	}
	return nil
}

// move handles the movement keys in the focused pane.
func (m *Model) move(msg tea.KeyMsg) {
	p := m.focused()
	k := m.keys
	switch {
	case key.Matches(msg, k.Up):
		p.Move(-1)
	case key.Matches(msg, k.Down):
		p.Move(1)
	case key.Matches(msg, k.PageUp):
		p.Move(-max(p.Rows(), 1))
	case key.Matches(msg, k.PageDown):
		p.Move(max(p.Rows(), 1))
	case key.Matches(msg, k.Top):
		p.Top()
	case key.Matches(msg, k.Bottom):
		p.Bottom()
	}
}

// mover is what movement keys need from a pane.
type mover interface {
	Move(n int)
	Top()
	Bottom()
	Rows() int
}

func (m *Model) focused() mover {
	switch m.focus {
	case paneAll:
		return m.all
	case paneAvailable:
		return m.avail
	case panePairs:
		return m.pairs
	}
	return m.events
}

func (m *Model) onFilterKey(msg tea.KeyMsg) tea.Cmd {
	switch {
	case key.Matches(msg, m.keys.Apply):
		m.mode = modeNormal
		m.filter.Blur()
		return nil
	case msg.Type == tea.KeyEsc:
		m.mode = modeNormal
		m.filter.Blur()
		m.clearFilter()
		return nil
	}
	var cmd tea.Cmd
	m.filter, cmd = m.filter.Update(msg)
	m.data.filter = strings.ToLower(strings.TrimSpace(m.filter.Value()))
	m.dirty = true
	return cmd
}

// clearFilter shows every row again.
func (m *Model) clearFilter() {
	m.filter.SetValue("")
	m.data.filter = ""
	m.dirty = true
}

// askKick asks to confirm kicking the selected device.
func (m *Model) askKick() {
	id, ok := m.selectedDevice()
	if !ok {
		m.notice = "select a device to kick (in All devices or Available)"
		return
	}
	m.confirm = pending{command: adminapi.CommandKick, id: id, prompt: fmt.Sprintf("Kick device %q (it is disconnected; its peer is told)?", id)}
	m.mode = modeConfirm
}

// askUnpair asks to confirm breaking the selected pair, or the pair of the
// selected device.
func (m *Model) askUnpair() {
	var a, b string
	if m.focus == panePairs {
		sel, ok := m.pairs.rows.Selected()
		if p := m.pairOf(sel); ok && p != nil {
			a, b = p.A, p.B
		}
	} else if id, ok := m.selectedDevice(); ok {
		if p := m.pairOf(id); p != nil {
			a, b = p.A, p.B
		}
	}
	if a == "" {
		m.notice = "select a pair, or a paired device, to break"
		return
	}
	m.confirm = pending{command: adminapi.CommandUnpair, id: a, prompt: fmt.Sprintf("Break the pair %s → %s (both stay connected)?", a, b)}
	m.mode = modeConfirm
}

func (m *Model) pairOf(id string) *adminapi.Pair {
	if m.data.state == nil {
		return nil
	}
	p, _ := m.data.state.PairOf(id)
	return p
}

func (m *Model) selectedDevice() (string, bool) {
	switch m.focus {
	case paneAll:
		return m.all.rows.Selected()
	case paneAvailable:
		return m.avail.rows.Selected()
	}
	return "", false
}

func (m *Model) onConfirmKey(msg tea.KeyMsg) tea.Cmd {
	switch {
	case key.Matches(msg, m.keys.Yes):
		m.mode = modeNormal
		return m.run(m.confirm)
	case key.Matches(msg, m.keys.No), key.Matches(msg, m.keys.Quit):
		m.mode = modeNormal
		m.notice = "cancelled"
	}
	return nil
}

// run sends a confirmed command; its outcome comes back as a message.
func (m *Model) run(p pending) tea.Cmd {
	cmds, timeout := m.cfg.Commands, m.cfg.CommandTimeout
	m.notice = fmt.Sprintf("%s %s…", p.command, p.id)
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		var err error
		if p.command == adminapi.CommandKick {
			err = cmds.Kick(ctx, p.id)
		} else {
			err = cmds.Unpair(ctx, p.id)
		}
		return commandDoneMsg{command: p.command, id: p.id, err: err}
	}
}

func (m *Model) onCommandDone(msg commandDoneMsg) {
	if msg.err != nil {
		m.notice = fmt.Sprintf("%s %s failed: %v", msg.command, msg.id, msg.err)
		return
	}
	m.notice = fmt.Sprintf("%s %s", adminapi.CommandVerb(msg.command), msg.id)
}

// rebuild recomputes the rows of every pane from the data and the filter.
func (m *Model) rebuild() {
	f := m.data.filter
	st := m.data.state
	var all, avail, pairs []string
	m.available = 0
	if st != nil {
		all = make([]string, 0, len(st.Devices))
		avail = make([]string, 0, len(st.Devices))
		pairs = make([]string, 0, len(st.Pairs))
		for id, d := range st.Devices {
			if d.Available {
				m.available++
			}
			if f != "" && !strings.Contains(strings.ToLower(id), f) {
				continue
			}
			all = append(all, id)
			if d.Available {
				avail = append(avail, id)
			}
		}
		for a, p := range st.Pairs {
			if f == "" || strings.Contains(strings.ToLower(a), f) || strings.Contains(strings.ToLower(p.B), f) {
				pairs = append(pairs, a)
			}
		}
		sort.Strings(all)
		sort.Strings(avail)
		sort.Strings(pairs)
	}
	m.all.rows.SetItems(all)
	m.avail.rows.SetItems(avail)
	m.pairs.rows.SetItems(pairs)
	m.events.Refresh(f)
}

// minWidth and minHeight are the smallest screen the dashboard draws.
const (
	minWidth  = 40
	minHeight = headerHeight + 1 + 2*paneChrome + 2
)

// redraw draws the screen into frameView.
func (m *Model) redraw() {
	m.redraws++
	m.stale = false
	m.data.now = m.cfg.Now()
	if m.dirty {
		m.rebuild()
		m.dirty = false
	}
	if m.width == 0 {
		return // no size yet
	}
	if m.width < minWidth || m.height < minHeight {
		m.frameView = cell(fmt.Sprintf("p2pctl needs at least %dx%d (now %dx%d)", minWidth, minHeight, m.width, m.height), m.width)
		return
	}
	head := m.header.View(headerInfo{url: m.cfg.URL, status: m.status, err: m.statusErr, state: m.data.state, available: m.available, spark: m.spark})
	var body string
	if m.mode == modeHelp {
		body = m.helpScreen()
	} else {
		top := joinRow(m.all.View(&m.data, m.focus == paneAll), m.avail.View(&m.data, m.focus == paneAvailable), m.pairs.View(&m.data, m.focus == panePairs))
		body = top
		if m.events.height > 2 {
			body += "\n" + m.events.View(&m.data, m.focus == paneEvents)
		}
	}
	m.frameView = head + "\n" + body + "\n" + m.footer()
}

func (m *Model) helpScreen() string {
	h := m.help
	h.ShowAll = true
	text := "Keys\n\n" + h.View(m.keys) + "\n\n" +
		"K kicks the selected device; u breaks the selected pair (or the selected device's pair).\n" +
		"Both ask for confirmation. The filter matches device ids, in every pane and the event log.\n\n" +
		"Press any key to go back."
	body := m.styles.HelpScreen.Width(m.width).Render(text)
	lines := strings.Split(body, "\n")
	rows := max(m.height-headerHeight-1, 0)
	for len(lines) < rows {
		lines = append(lines, "")
	}
	for i := range lines {
		lines[i] = cell(lines[i], m.width)
	}
	return strings.Join(lines[:rows], "\n")
}

func (m *Model) footer() string {
	var s string
	switch m.mode {
	case modeFilter:
		s = m.filter.View() + m.styles.Dim.Render("  enter keep · esc clear")
	case modeConfirm:
		s = m.styles.Prompt.Render(m.confirm.prompt) + m.styles.Dim.Render("  y confirm · n cancel")
	default:
		s = m.help.ShortHelpView(m.keys.ShortHelp())
		if m.data.filter != "" {
			s = m.styles.Notice.Render(fmt.Sprintf("filter %q", m.data.filter)) + m.styles.Dim.Render(" (esc clears) · ") + s
		}
		if m.notice != "" {
			s = m.styles.Notice.Render(m.notice) + m.styles.Dim.Render(" · ") + s
		}
	}
	return cell(s, m.width)
}

func errText(err error) string {
	if err == nil {
		return "unknown error"
	}
	return err.Error()
}

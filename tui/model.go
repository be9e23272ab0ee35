// Package tui is p2pctl's dashboard: a bubbletea program that shows a
// relay's devices, available devices, live pairs and events from the admin
// stream, one device's detail with a live tail of its traffic, and lets an
// operator kick devices and break pairs.
//
// The root model (Model) routes messages and handles the global keys; each
// part of the screen is a component that owns its keys and view and is
// given its size (header, the four panes, the device detail, the footer,
// the filter, the token input, the confirmation prompt, the help screen).
// They share a Common: the styles (Styles, from DefaultStyles), the keys
// (KeyMap, from DefaultKeyMap, which the help is generated from) and the
// data they draw.
//
// It stays responsive with tens of thousands of devices: stream updates are
// applied to the model as they come but drawn at most ten times a second,
// only the visible rows of each pane are drawn, and the event log and the
// traffic tail are bounded rings.
package tui

import (
	"context"
	"fmt"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/p2prelay/p2prelay/admin/adminapi"
)

// Commander runs the operator's commands and watches, and takes a new
// admin token; *adminclient.Subscription is one.
type Commander interface {
	Kick(ctx context.Context, id string) error
	Unpair(ctx context.Context, id string) error
	// Watch and Unwatch start and stop a device's detail and traffic in
	// the stream (Update.Detail, Update.Traffic).
	Watch(ctx context.Context, id string) error
	Unwatch(ctx context.Context, id string) error
	// SetToken replaces the admin token, and retries at once.
	SetToken(token string)
}

// Defaults for Config's zero values.
const (
	DefaultRedraw         = 100 * time.Millisecond
	DefaultLogSize        = 1000
	DefaultCommandTimeout = 10 * time.Second
	DefaultHintTimeout    = 5 * time.Second
)

// Config configures the dashboard.
type Config struct {
	// Updates is the admin stream (adminclient.Subscription.Updates).
	// Required.
	Updates <-chan adminapi.Update
	// Commands runs kick, unpair and the watches. Required.
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
	// CommandTimeout bounds one kick, unpair or watch. Default
	// DefaultCommandTimeout.
	CommandTimeout time.Duration
	// HintTimeout is how long a notice stays in the footer, unless a key
	// takes it away first. Default DefaultHintTimeout.
	HintTimeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// The panes, in tab order; the nodes pane is in it only when the relay is
// a node of a cluster.
const (
	paneAll = iota
	paneAvailable
	panePairs
	paneEvents
	paneNodes
)

// mode is what the keys currently do.
type mode int

const (
	modeNormal  mode = iota
	modeFilter       // typing a filter
	modeConfirm      // answering a confirmation
	modeHelp         // reading the help
	modeToken        // typing an admin token
)

// Model is the dashboard's root model. Create it with New and run it with
// tea.NewProgram.
type Model struct {
	cfg    Config
	common Common // the whole screen's size, and what the components share
	data   data   // what the components draw

	header  *header
	all     *devicesPane
	avail   *devicesPane
	pairs   *pairsPane
	events  *eventsPane
	nodes   *nodesPane
	detail  *detailView
	help    *helpScreen
	footer  *footer
	filter  *filterInput
	token   *tokenInput
	confirm *confirmPrompt

	mode        mode
	detailOpen  bool   // the detail takes the panes' place
	focus       int    // the pane with the focus, in tab order
	clustered   bool   // the relay is a node of a cluster: the nodes pane is shown
	headerLines int    // the lines the header took at the last layout
	dirty       bool   // the rows' data, the filter or the order changed since the panes' rows were built
	stale       bool   // the stream brought something since the last redraw
	frameView   string // the last drawn screen; View returns it
	redraws     int    // screens drawn, for tests
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
	if cfg.HintTimeout <= 0 {
		cfg.HintTimeout = DefaultHintTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	keys, styles := DefaultKeyMap(), DefaultStyles(cfg.Renderer)
	if cfg.Keys != nil {
		keys = *cfg.Keys
	}
	if cfg.Styles != nil {
		styles = *cfg.Styles
	}
	m := &Model{cfg: cfg, dirty: true, headerLines: headerHeight}
	m.data.now = cfg.Now()
	c := Common{Styles: &styles, Keys: &keys, data: &m.data}
	m.common = c
	m.header = newHeader(c, cfg.URL)
	m.all = newDevicesPane(c, false)
	m.avail = newDevicesPane(c, true)
	m.pairs = newPairsPane(c)
	m.events = newEventsPane(c, cfg.LogSize, cfg.Now)
	m.nodes = newNodesPane(c)
	m.detail = newDetailView(c)
	m.help = newHelpScreen(c)
	m.footer = newFooter(c)
	m.filter = newFilterInput(c)
	m.token = newTokenInput(c)
	m.confirm = newConfirmPrompt(c)
	m.setFocus(paneAll)
	return m
}

// panes returns the panes shown, in tab order.
func (m *Model) panes() []pane {
	if m.clustered {
		return []pane{m.all, m.avail, m.pairs, m.events, m.nodes}
	}
	return []pane{m.all, m.avail, m.pairs, m.events}
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
		if m.footer.Expire(m.cfg.Now(), m.cfg.HintTimeout) {
			m.stale = true
		}
		if m.dirty || m.stale {
			m.redraw()
		}
		return m, m.tick()
	case commandDoneMsg:
		m.onCommandDone(msg)
		m.redraw()
		return m, nil
	}
	switch m.mode {
	case modeFilter:
		return m, m.filter.Update(msg)
	case modeToken:
		_, _, cmd := m.token.Update(msg)
		return m, cmd
	}
	return m, nil
}

// View returns the last drawn screen: drawing happens on keys, resizes and
// the redraw clock, never once per stream update.
func (m *Model) View() string { return m.frameView }

// Redraws reports how many screens were drawn.
func (m *Model) Redraws() int { return m.redraws }

// resize takes the screen's new size.
func (m *Model) resize(w, h int) {
	m.common.SetSize(w, h)
	m.header.SetSize(w, m.headerLines)
	for _, c := range [...]component{m.footer, m.filter, m.token, m.confirm} {
		c.SetSize(w, 1)
	}
	m.layout()
}

// layout sizes the body under a header of m.headerLines: the three device
// and pair panes side by side over the event log (beside the nodes, under
// the pairs, on a cluster), or the detail, or the help.
func (m *Model) layout() {
	w, h := m.common.Width, m.common.Height
	body := max(h-m.headerLines-1, 0)
	top := max(body*3/5, paneChrome+1)
	third := w / 3
	m.all.SetSize(third, top)
	m.avail.SetSize(third, top)
	m.pairs.SetSize(w-2*third, top)
	if m.clustered {
		m.events.SetSize(2*third, max(body-top, 0))
		m.nodes.SetSize(w-2*third, max(body-top, 0))
	} else {
		m.events.SetSize(w, max(body-top, 0))
	}
	m.detail.SetSize(w, body)
	m.help.SetSize(w, body)
}

// onStream takes in what the stream brought: the data changes at once, the
// screen on the next tick. Counters alone (the once-a-second stats) change
// what the rows show, not which rows there are: they only call for a
// redraw, not for the rows to be rebuilt, unless the devices are sorted by
// counters.
func (m *Model) onStream(us []adminapi.Update) {
	for _, u := range us {
		m.header.SetStatus(u.Status, u.Err)
		m.data.live = u.Status == adminapi.StatusLive
		if m.events.Status(u.Status, u.Err) {
			m.dirty = true
		}
		if u.Snapshot != nil {
			m.resynced(u.Snapshot)
		}
		for _, d := range u.Deltas {
			m.applyDelta(d)
		}
		if m.detailOpen {
			if u.Detail != nil {
				m.detail.SetDetail(u.Detail)
			}
			if u.Traffic != nil {
				m.detail.AddTraffic(u.Traffic)
			}
		}
	}
	m.stale = true
}

func (m *Model) resynced(snap *adminapi.Snapshot) {
	if m.data.state == nil {
		m.data.state = adminapi.NewState(snap)
	} else {
		m.data.state.Reset(snap)
	}
	m.events.Synced(snap)
	m.dirty = true
	if c := m.data.state.Clustered(); c != m.clustered {
		m.clustered = c
		if m.focus >= len(m.panes()) {
			m.setFocus(paneAll)
		}
		m.layout()
	}
}

func (m *Model) applyDelta(d adminapi.Delta) {
	st := m.data.state
	if st == nil {
		return
	}
	st.Apply(d)
	if d.Kind == adminapi.KindStats {
		if d.Stats != nil {
			m.header.AddRate(d.Stats.MessagesPerSec)
		}
		if m.data.order.followsCounters() || (d.Nodes != nil && m.nodes.changed(d.Nodes)) {
			m.dirty = true
		}
		return
	}
	m.events.Delta(d)
	m.dirty = true
}

// onKey handles a key in the current mode. Several runes in one message
// (keys typed faster than the terminal is read) count as as many keys. A
// key takes the footer's notice away.
func (m *Model) onKey(msg tea.KeyMsg) tea.Cmd {
	if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 && !msg.Paste && m.mode != modeToken {
		var cmds []tea.Cmd
		for _, r := range msg.Runes {
			cmds = append(cmds, m.onKey(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}, Alt: msg.Alt}))
		}
		return tea.Sequence(cmds...)
	}
	m.footer.ClearNotice()
	k := m.common.Keys
	switch m.mode {
	case modeFilter:
		cmd := m.filter.Update(msg)
		if !m.filter.Focused() {
			m.mode = modeNormal
		}
		m.setFilter(m.filter.Value())
		return cmd
	case modeToken:
		return m.onTokenKey(msg)
	case modeConfirm:
		return m.onConfirmKey(msg)
	case modeHelp:
		if key.Matches(msg, k.Quit) {
			return tea.Quit
		}
		m.mode = modeNormal // any other key closes the help
		return nil
	}
	switch {
	case key.Matches(msg, k.Quit):
		return tea.Quit
	case key.Matches(msg, k.Help):
		m.mode = modeHelp
	case key.Matches(msg, k.Token):
		m.mode = modeToken
		return m.token.Focus()
	case key.Matches(msg, k.Kick):
		m.askKick()
	case key.Matches(msg, k.Unpair):
		m.askUnpair()
	case m.detailOpen:
		return m.onDetailKey(msg)
	default:
		return m.onPanesKey(msg)
	}
	return nil
}

// onPanesKey handles a key while the panes are shown.
func (m *Model) onPanesKey(msg tea.KeyMsg) tea.Cmd {
	k := m.common.Keys
	switch {
	case key.Matches(msg, k.NextPane):
		n := len(m.panes())
		m.setFocus((m.focus + 1) % n)
	case key.Matches(msg, k.PrevPane):
		n := len(m.panes())
		m.setFocus((m.focus + n - 1) % n)
	case key.Matches(msg, k.Filter):
		m.mode = modeFilter
		return m.filter.Focus()
	case key.Matches(msg, k.Clear):
		m.filter.Clear()
		m.setFilter("")
	case key.Matches(msg, k.Sort):
		m.data.order = m.data.order.next()
		m.dirty = true
	case key.Matches(msg, k.Open):
		return m.openDetail()
	default:
		return m.panes()[m.focus].Update(msg)
	}
	return nil
}

// onDetailKey handles a key while a device's detail is shown.
func (m *Model) onDetailKey(msg tea.KeyMsg) tea.Cmd {
	if key.Matches(msg, m.common.Keys.Back) {
		return m.closeDetail()
	}
	return m.detail.Update(msg)
}

// openDetail shows the selected device's detail and watches it.
func (m *Model) openDetail() tea.Cmd {
	id, ok := m.selectedDevice()
	if !ok {
		m.notice("select a device to look at (in All devices, Available or Pairs)")
		return nil
	}
	m.detail.Open(id)
	m.detailOpen = true
	m.footer.SetDetail(true)
	return m.command(adminapi.CommandWatch, id, func(ctx context.Context) error { return m.cfg.Commands.Watch(ctx, id) })
}

// closeDetail goes back to the panes and stops watching.
func (m *Model) closeDetail() tea.Cmd {
	id := m.detail.ID()
	m.detailOpen = false
	m.footer.SetDetail(false)
	return m.command(adminapi.CommandUnwatch, id, func(ctx context.Context) error { return m.cfg.Commands.Unwatch(ctx, id) })
}

// selectedDevice is the device a command is for: the one whose detail is
// open, or the focused pane's selected device (in Pairs, the side that
// asked).
func (m *Model) selectedDevice() (string, bool) {
	if m.detailOpen {
		return m.detail.ID(), true
	}
	switch p := m.panes()[m.focus].(type) {
	case deviceSelection:
		return p.SelectedDevice()
	case pairSelection:
		if pr, ok := p.SelectedPair(); ok {
			return pr.A, true
		}
	}
	return "", false
}

// setFocus gives pane i the focus.
func (m *Model) setFocus(i int) {
	m.focus = i
	for j, p := range m.panes() {
		p.SetFocused(j == i)
	}
}

// setFilter applies an id filter (lower case, "" for none) to every pane.
func (m *Model) setFilter(f string) {
	if f != m.data.filter {
		m.data.filter = f
		m.dirty = true
	}
}

// notice shows a hint or an outcome in the footer.
func (m *Model) notice(s string) { m.footer.SetNotice(s, m.cfg.Now()) }

// askKick asks to confirm kicking the selected device.
func (m *Model) askKick() {
	id, ok := "", false
	if m.detailOpen {
		id, ok = m.detail.ID(), true
	} else if p, isDevices := m.panes()[m.focus].(deviceSelection); isDevices {
		id, ok = p.SelectedDevice()
	}
	if !ok {
		m.notice("select a device to kick (in All devices or Available)")
		return
	}
	m.ask(pending{command: adminapi.CommandKick, id: id, prompt: fmt.Sprintf("Kick device %q (it is disconnected; its peer is told)?", id)})
}

// askUnpair asks to confirm breaking the selected pair, or the pair of the
// selected device.
func (m *Model) askUnpair() {
	var pr *adminapi.Pair
	if m.detailOpen {
		pr, _ = m.data.pairOf(m.detail.ID(), true)
	} else if p, isPairs := m.panes()[m.focus].(pairSelection); isPairs {
		pr, _ = p.SelectedPair()
	}
	if pr == nil {
		m.notice("select a pair, or a paired device, to break")
		return
	}
	m.ask(pending{command: adminapi.CommandUnpair, id: pr.A, prompt: fmt.Sprintf("Break the pair %s (both stay connected)?", pairName(pr))})
}

func (m *Model) ask(p pending) {
	m.confirm.Ask(p)
	m.mode = modeConfirm
}

func (m *Model) onConfirmKey(msg tea.KeyMsg) tea.Cmd {
	p, yes, answered := m.confirm.Answer(msg)
	if !answered {
		return nil
	}
	m.mode = modeNormal
	if !yes {
		m.notice("cancelled")
		return nil
	}
	m.notice(fmt.Sprintf("%s %s…", p.command, p.id))
	cmds := m.cfg.Commands
	run := cmds.Unpair
	if p.command == adminapi.CommandKick {
		run = cmds.Kick
	}
	return m.command(p.command, p.id, func(ctx context.Context) error { return run(ctx, p.id) })
}

// onTokenKey handles a key while the admin token is typed: enter hands it
// to the subscription, which tries it at once.
func (m *Model) onTokenKey(msg tea.KeyMsg) tea.Cmd {
	tok, done, cmd := m.token.Update(msg)
	if !done {
		return cmd
	}
	m.mode = modeNormal
	if tok == "" {
		m.notice("token unchanged")
		return nil
	}
	m.cfg.Commands.SetToken(tok)
	m.notice("trying the new token…")
	return nil
}

// command runs one of the operator's commands; its outcome comes back as a
// commandDoneMsg.
func (m *Model) command(name, id string, run func(context.Context) error) tea.Cmd {
	timeout := m.cfg.CommandTimeout
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return commandDoneMsg{command: name, id: id, err: run(ctx)}
	}
}

func (m *Model) onCommandDone(msg commandDoneMsg) {
	switch {
	case msg.err != nil:
		m.notice(fmt.Sprintf("%s %s failed: %v", msg.command, msg.id, msg.err))
	case msg.command == adminapi.CommandKick || msg.command == adminapi.CommandUnpair:
		m.notice(fmt.Sprintf("%s %s", adminapi.CommandVerb(msg.command), msg.id))
	}
}

// rebuild recomputes the rows of every pane from the data, the filter and
// the order.
func (m *Model) rebuild() {
	d := &m.data
	d.sorted, d.devices, d.availIDs, d.available = d.sorter.deviceRows(d.state, d.filter, d.order, d.sorted)
	for _, p := range m.panes() {
		p.Refresh()
	}
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
	if m.dirty && !m.detailOpen {
		m.rebuild()
		m.dirty = false
	}
	w, h := m.common.Width, m.common.Height
	if w == 0 {
		return // no size yet
	}
	if w < minWidth || h < minHeight {
		m.frameView = cell(fmt.Sprintf("p2pctl needs at least %dx%d (now %dx%d)", minWidth, minHeight, w, h), w)
		return
	}
	head := m.header.Lines()
	if n := min(len(head), h-minHeight+headerHeight); n != m.headerLines {
		m.headerLines = n
		m.layout()
	}
	var body string
	switch {
	case m.mode == modeHelp:
		body = m.help.View()
	case m.detailOpen:
		m.detail.Refresh()
		body = m.detail.View()
	default:
		body = joinRow(m.all.View(), m.avail.View(), m.pairs.View())
		switch {
		case m.events.Height <= 2:
		case m.clustered:
			body += "\n" + joinRow(m.events.View(), m.nodes.View())
		default:
			body += "\n" + m.events.View()
		}
	}
	m.frameView = joinLines(head[:m.headerLines]) + "\n" + body + "\n" + m.bottomLine().View()
}

// bottomLine is the component on the screen's last line.
func (m *Model) bottomLine() component {
	switch m.mode {
	case modeFilter:
		return m.filter
	case modeToken:
		return m.token
	case modeConfirm:
		return m.confirm
	}
	return m.footer
}

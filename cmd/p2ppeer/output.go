package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/charmbracelet/lipgloss"

	"github.com/p2prelay/p2prelay/peer"
	"github.com/p2prelay/p2prelay/protocol"
)

// Styles colour the human-readable output.
type Styles struct {
	Good, Warn, Bad, Event, Answer, Dim lipgloss.Style
}

// NewStyles returns the styles, rendered by r: plain when r has no colour.
func NewStyles(r *lipgloss.Renderer) Styles {
	return Styles{
		Good:   r.NewStyle().Foreground(lipgloss.Color("2")).Bold(true),
		Warn:   r.NewStyle().Foreground(lipgloss.Color("3")).Bold(true),
		Bad:    r.NewStyle().Foreground(lipgloss.Color("1")).Bold(true),
		Event:  r.NewStyle().Foreground(lipgloss.Color("6")).Bold(true),
		Answer: r.NewStyle().Foreground(lipgloss.Color("5")).Bold(true),
		Dim:    r.NewStyle().Faint(true),
	}
}

// printer writes what happens: human-readable lines, or with --json one
// JSON object per line on stdout. Errors also go to stderr, one line each.
// It is safe for concurrent use.
type printer struct {
	json  bool
	quiet bool // human output of one-shot commands: results only
	st    Styles

	mu  sync.Mutex // guards out, err and the writes
	out io.Writer
	err io.Writer
}

func newPrinter(out, errw io.Writer, asJSON bool, st Styles) *printer {
	return &printer{json: asJSON, st: st, out: out, err: errw}
}

// setWriters redirects the output (to the prompt's writers).
func (p *printer) setWriters(out, errw io.Writer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out, p.err = out, errw
}

// obj is one --json line: its type first, then the fields in order.
type obj []field

type field struct {
	key   string
	value any
}

// newObj returns an object of type typ with fields given as key, value,
// key, value...
func newObj(typ string, kv ...any) obj {
	o := obj{{"type", typ}}
	for i := 0; i+1 < len(kv); i += 2 {
		o = append(o, field{kv[i].(string), kv[i+1]})
	}
	return o
}

// with returns o with one more field.
func (o obj) with(key string, value any) obj { return append(o, field{key, value}) }

// MarshalJSON writes the fields in order.
func (o obj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(compactJSON(f.key))
		b.WriteByte(':')
		b.WriteString(compactJSON(f.value))
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// emit writes obj with --json, else line unless quiet.
func (p *printer) emit(o obj, line string, keep bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		_, _ = fmt.Fprintln(p.out, compactJSON(o))
		return
	}
	if line == "" || (p.quiet && !keep) {
		return
	}
	_, _ = fmt.Fprintln(p.out, line)
}

// label pads a label to line the messages up, then styles it.
func label(s lipgloss.Style, text string) string {
	return s.Render(fmt.Sprintf("%-9s", text))
}

func (p *printer) connected(id, url string, again bool) {
	o := newObj("connected", "id", id)
	line := label(p.st.Good, "connected") + " " + id + " " + p.st.Dim.Render("("+url+")")
	if again {
		o = o.with("reconnected", true)
		line = label(p.st.Good, "connected") + " " + id + " " + p.st.Dim.Render("(again)")
	}
	p.emit(o, line, false)
}

func (p *printer) disconnected(reason string, err error) {
	o := newObj("disconnected", "reason", reason)
	line := label(p.st.Warn, "lost") + " connection " + p.st.Dim.Render("("+reason+")")
	if err != nil {
		code, msg := errParts(err)
		o = o.with("code", code).with("message", msg)
		line += ": " + err.Error()
	}
	p.emit(o, line+"; reconnecting", false)
}

// resumed says the relay kept the pair while the connection was down.
func (p *printer) resumed(with string) {
	p.emit(newObj("resumed", "peer", with), label(p.st.Good, "resumed")+" "+with+" "+p.st.Dim.Render("(the pair was kept)"), false)
}

func (p *printer) paired(with string) {
	p.emit(newObj("paired", "peer", with), label(p.st.Good, "paired")+" "+with, false)
}

// unpairReasons say why a pair ended, in words.
var unpairReasons = map[string]string{
	string(peer.ReasonUnregistered):   "you unpaired",
	string(peer.ReasonEnded):          "the peer ended it",
	string(peer.ReasonPeerGone):       "the peer disconnected",
	string(peer.ReasonConnectionLost): "the connection dropped",
}

func (p *printer) unpaired(from, reason string) {
	why := unpairReasons[reason]
	if why == "" {
		why = reason
	}
	p.emit(newObj("unpaired", "peer", from, "reason", reason),
		label(p.st.Warn, "unpaired")+" "+from+" "+p.st.Dim.Render("("+why+")"), false)
}

func (p *printer) pairRefused(from string) {
	p.emit(newObj("pair_refused", "peer", from),
		label(p.st.Warn, "refused")+" pairing with "+from, false)
}

// pairFailed reports a failed pairing, on stderr too.
func (p *printer) pairFailed(target string, err error) {
	code, msg := errParts(err)
	p.emit(newObj("pair_failed", "peer", target, "code", code, "message", msg), "", false)
	p.stderr(fmt.Sprintf("pairing with %s failed: %s", target, reason(err)))
}

func (p *printer) event(ev peer.Event, reply []any, replied bool) {
	o := newObj("event", "event", ev.Name, "args", nonNil(ev.Args), "from", ev.From)
	line := label(p.st.Event, "event") + " " + ev.Name
	if len(ev.Args) > 0 {
		line += " " + formatArgs(ev.Args)
	}
	if ev.From != "" {
		line += " " + p.st.Dim.Render("from "+ev.From)
	}
	if replied {
		o = o.with("reply", nonNil(reply))
		line += " " + p.st.Dim.Render("answered") + " " + formatArgs(reply)
	}
	p.emit(o, line, true)
}

func (p *printer) sent(event string, args []any) {
	line := label(p.st.Dim, "sent") + " " + event
	if len(args) > 0 {
		line += " " + formatArgs(args)
	}
	p.emit(newObj("sent", "event", event, "args", nonNil(args)), line, false)
}

// ack prints the peer's answer; quiet output prints the values alone.
func (p *printer) ack(event string, args []any) {
	line := label(p.st.Answer, "answer") + " " + event + " " + p.st.Dim.Render("->") + " " + formatArgs(args)
	if p.quiet {
		line = formatArgs(args)
	}
	p.emit(newObj("ack", "event", event, "args", nonNil(args)), line, true)
}

// streamOpen says a stream with peer is open.
func (p *printer) streamOpen(with string) {
	p.emit(newObj("stream", "peer", with), label(p.st.Good, "stream")+" with "+with, false)
}

// progress redraws a terminal's progress line.
func (p *printer) progress(sent, received int64, took time.Duration) {
	if p.json {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = fmt.Fprintf(p.err, "\r\033[Ksent %s (%s), received %s (%s)",
		mib(sent), rate(sent, took), mib(received), rate(received, took))
}

// streamDone says how much went each way, and how fast; on a terminal it
// replaces the progress line.
func (p *printer) streamDone(with string, sent int64, sendTook time.Duration, received int64, receiveTook time.Duration, terminal bool) {
	o := newObj("stream_end", "peer", with,
		"sent", sent, "sent_seconds", seconds(sendTook), "sent_mib_per_s", mibPerSecond(sent, sendTook),
		"received", received, "received_seconds", seconds(receiveTook), "received_mib_per_s", mibPerSecond(received, receiveTook))
	line := fmt.Sprintf("%s sent %s in %.2fs (%s), received %s in %.2fs (%s)", label(p.st.Good, "done"),
		mib(sent), sendTook.Seconds(), rate(sent, sendTook), mib(received), receiveTook.Seconds(), rate(received, receiveTook))
	if terminal && !p.json {
		line = "\r\033[K" + line
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		_, _ = fmt.Fprintln(p.out, compactJSON(o))
		return
	}
	_, _ = fmt.Fprintln(p.err, line)
}

// mib shows a byte count in MiB.
func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func mibPerSecond(n int64, took time.Duration) float64 {
	if took <= 0 {
		return 0
	}
	return math.Round(float64(n)/(1<<20)/took.Seconds()*10) / 10
}

// rate shows a throughput in MiB/s.
func rate(n int64, took time.Duration) string {
	return fmt.Sprintf("%.1f MiB/s", mibPerSecond(n, took))
}

func seconds(d time.Duration) float64 { return math.Round(d.Seconds()*1000) / 1000 }

func (p *printer) devices(list []protocol.DeviceEntry) {
	entries := make([]obj, len(list))
	var b strings.Builder
	for i, d := range list {
		entries[i] = obj{{"id", d.ID}, {"available", d.Available}}
		state := p.st.Good.Render("available")
		if !d.Available {
			state = p.st.Warn.Render("busy")
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s\t%s", d.ID, state)
	}
	line := b.String()
	if len(list) == 0 {
		line = p.st.Dim.Render("no devices")
	}
	p.emit(newObj("devices", "devices", entries), line, true)
}

// info prints a human-only line (help text).
func (p *printer) info(text string) {
	if p.json {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = fmt.Fprintln(p.out, text)
}

// error reports err: one line on stderr, and with --json an error object.
func (p *printer) error(err error) {
	code, msg := errParts(err)
	p.emit(newObj("error", "code", code, "message", msg), "", false)
	p.stderr(oneLine(err))
}

func (p *printer) stderr(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = fmt.Fprintln(p.err, p.st.Bad.Render("p2ppeer:")+" "+line)
}

// errParts splits an error into a code (the relay's, or one of ours) and a
// message.
func errParts(err error) (string, string) {
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.Code != "" {
		return string(pe.Code), pe.Message
	}
	var ue usageError
	if errors.As(err, &ue) {
		return "USAGE", ue.Error()
	}
	if errors.Is(err, peer.ErrConnect) {
		return "CONNECT", oneLine(err)
	}
	return "ERROR", oneLine(err)
}

// reason says why err happened, on one line, without the peer package's
// account of which request it was: the relay's "CODE: message" when it
// refused something, else the error's text.
func reason(err error) string {
	var pe *protocol.Error
	switch {
	case errors.As(err, &pe) && pe.Code != "":
		return pe.Error()
	case errors.Is(err, peer.ErrNotConnected):
		return peer.ErrNotConnected.Error() + " (reconnecting)"
	case errors.Is(err, peer.ErrClosed):
		return peer.ErrClosed.Error()
	}
	return oneLine(err)
}

// oneLine is err's text on one line, without the package prefixes.
func oneLine(err error) string {
	s := strings.ReplaceAll(err.Error(), "peer: ", "")
	return strings.Join(strings.Fields(s), " ")
}

func nonNil(args []any) []any {
	if args == nil {
		return []any{}
	}
	return args
}

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/p2prelay/p2prelay/peer"
	"github.com/p2prelay/p2prelay/protocol"
)

// noticeWait bounds how long a command waits for its own notice to print.
const noticeWait = 2 * time.Second

// session is one connected device of a command: the peer, what it prints
// and how it answers.
type session struct {
	g   *Globals
	env *Env
	pr  *printer
	p   *peer.Peer
	// reply answers acknowledgements; nil echoes the event's arguments.
	reply *any
	// ready is closed once "connected" is printed: what the device hears
	// (a pair request may come at once) prints after it.
	ready chan struct{}
	acks  sync.WaitGroup // the ack commands under way

	mu       sync.Mutex // guards the fields below
	waiters  []waiter
	firstErr error
	// setPrompt, when set, shows the current peer ("" for none) in the
	// prompt.
	setPrompt func(with string)
}

// setPromptHook makes the session show the current peer with f.
func (s *session) setPromptHook(f func(with string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setPrompt = f
}

// waiter is a command waiting for its notice to be printed.
type waiter struct {
	kind peer.NoticeKind
	peer string
	ch   chan struct{}
}

// sessionConfig says how a session's device behaves.
type sessionConfig struct {
	id     string
	accept peer.AcceptPolicy
	reply  *any
	// wait: pairing waits for a target that is offline or busy.
	wait bool
	// repair: after a reconnect that lost the pair, pair again.
	repair bool
	// onStream takes the streams the peer opens; nil refuses them.
	onStream func(*peer.Stream)
	// stream sets the stream sizes; zero values are the peer package's.
	stream streamConfig
}

// streamConfig is how a session's streams send.
type streamConfig struct {
	chunk, window int
	rate          float64
}

// openSession connects the device and prints that it did.
func openSession(env *Env, g *Globals, pr *printer, sc sessionConfig) (*session, error) {
	s := &session{g: g, env: env, pr: pr, reply: sc.reply, ready: make(chan struct{})}
	p, err := peer.Dial(env.Ctx, peer.Config{
		URL:           g.URL,
		ID:            sc.id,
		Token:         g.Token,
		Accept:        sc.accept,
		Timeout:       g.Timeout,
		WaitForTarget: sc.wait,
		Repair:        sc.repair,
		OnStream:      sc.onStream,
		StreamChunk:   sc.stream.chunk,
		StreamWindow:  sc.stream.window,
		StreamRate:    sc.stream.rate,
		OnEvent:       s.onEvent,
		OnNotice:      s.onNotice,
		Logger:        slog.New(slog.DiscardHandler),
	})
	if err != nil {
		close(s.ready)
		return nil, err
	}
	s.p = p
	pr.connected(sc.id, g.URL, false)
	close(s.ready)
	return s, nil
}

// close disconnects and waits until every event has been printed.
func (s *session) close() {
	_ = s.p.Close()
	select {
	case <-s.p.Done():
	case <-time.After(s.g.Timeout):
	}
}

// onEvent prints an event from the peer and answers it when asked.
func (s *session) onEvent(ev peer.Event) {
	<-s.ready
	var reply []any
	replied := false
	if ev.WantsAck() {
		reply = ev.Args
		if s.reply != nil {
			reply = []any{*s.reply}
		}
		replied = ev.Ack(reply...) == nil
	}
	s.pr.event(ev, reply, replied)
}

// onNotice prints a change of state.
func (s *session) onNotice(n peer.Notice) {
	<-s.ready
	s.mu.Lock()
	setPrompt := s.setPrompt
	s.mu.Unlock()
	switch n.Kind {
	case peer.Paired:
		s.pr.paired(n.Peer)
		if setPrompt != nil {
			setPrompt(n.Peer)
		}
	case peer.Unpaired:
		s.pr.unpaired(n.Peer, n.Reason)
		if setPrompt != nil {
			setPrompt("")
		}
	case peer.PairRequest:
		if !n.Accepted {
			s.pr.pairRefused(n.Peer)
		}
	case peer.Disconnected:
		s.pr.disconnected(n.Reason, n.Err)
	case peer.Reconnected:
		s.pr.connected(s.p.ID(), s.g.URL, true)
	case peer.Resumed:
		s.pr.resumed(n.Peer)
	case peer.PairFailed:
		s.pr.pairFailed(n.Peer, n.Err)
	case peer.Closed:
		// The command ends with the peer's error (see ended).
	}
	s.mu.Lock()
	kept := s.waiters[:0]
	for _, w := range s.waiters {
		if w.kind == n.Kind && w.peer == n.Peer {
			close(w.ch)
			continue
		}
		kept = append(kept, w)
	}
	s.waiters = kept
	s.mu.Unlock()
}

// expect returns a channel closed when a notice of kind about peer has
// been printed.
func (s *session) expect(kind peer.NoticeKind, peer string) chan struct{} {
	ch := make(chan struct{})
	s.mu.Lock()
	s.waiters = append(s.waiters, waiter{kind: kind, peer: peer, ch: ch})
	s.mu.Unlock()
	return ch
}

// forget drops a waiter that will not be closed.
func (s *session) forget(ch chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, w := range s.waiters {
		if w.ch == ch {
			s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
			return
		}
	}
}

// await waits for ch, briefly: the notice is on its way.
func await(ch chan struct{}) {
	select {
	case <-ch:
	case <-time.After(noticeWait):
	}
}

// pair pairs with target (waiting for it with --wait, until ctx ends);
// "paired" is printed when it returns.
func (s *session) pair(ctx context.Context, target string) error {
	ch := s.expect(peer.Paired, target)
	if err := s.p.Pair(ctx, target); err != nil {
		s.forget(ch)
		return err
	}
	await(ch)
	return nil
}

// unpair ends the pair, and returns once "unpaired" is printed.
func (s *session) unpair(ctx context.Context) error {
	current, ok := s.p.Peer()
	ch := s.expect(peer.Unpaired, current)
	err := s.p.Unpair(ctx)
	if err != nil || !ok {
		s.forget(ch)
		return err
	}
	await(ch)
	return nil
}

// leave ends the session politely: it waits for the acknowledgements under
// way, unpairs, and disconnects.
func (s *session) leave() {
	s.acks.Wait()
	if _, ok := s.p.Peer(); ok {
		ctx, cancel := context.WithTimeout(context.Background(), s.g.Timeout)
		if err := s.unpair(ctx); err != nil && !errors.Is(err, peer.ErrNotPaired) {
			s.pr.error(err)
		}
		cancel()
	}
	s.close()
}

// ended returns why the peer stopped by itself (kicked, not authorised),
// or nil.
func (s *session) ended() error {
	if err := s.p.Err(); err != nil {
		return closedError{err}
	}
	return nil
}

// fail prints a command's error and, in a script, records it for the exit
// status.
func (s *session) fail(err error) {
	var pe pairError
	if errors.As(err, &pe) {
		s.pr.pairFailed(pe.target, pe.err)
	} else {
		s.pr.error(err)
	}
	s.mu.Lock()
	if s.firstErr == nil && !s.env.Interactive {
		s.firstErr = err
	}
	s.mu.Unlock()
}

// failed returns the first recorded error, already printed.
func (s *session) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.firstErr == nil {
		return nil
	}
	return reportedError{s.firstErr}
}

// AnswerFlags say how a device that stays connected (connect, listen)
// answers pair requests and acknowledgements.
type AnswerFlags struct {
	Accept string `help:"Pair requests to accept: any, none, or ids separated by commas." default:"any"`
	Reply  string `help:"Answer acknowledgements with this value (JSON when it parses, else a string); by default, echo the event's arguments." placeholder:"JSON"`
}

// session returns the configuration of a session as device id.
func (f AnswerFlags) session(id string) (sessionConfig, error) {
	accept, err := parseAccept(f.Accept)
	if err != nil {
		return sessionConfig{}, err
	}
	reply, err := parseReply(f.Reply)
	if err != nil {
		return sessionConfig{}, err
	}
	return sessionConfig{id: id, accept: accept, reply: reply}, nil
}

// parseAccept reads --accept: any, none, or ids separated by commas.
func parseAccept(v string) (peer.AcceptPolicy, error) {
	switch strings.TrimSpace(v) {
	case "any":
		return peer.AcceptAny(), nil
	case "none":
		return peer.AcceptNone(), nil
	}
	var ids []string
	for _, id := range strings.Split(v, ",") {
		id = strings.TrimSpace(id)
		if err := protocol.ValidateID(id); err != nil {
			return nil, usageError{fmt.Errorf("--accept %q: want any, none or ids separated by commas: %w", v, err)}
		}
		ids = append(ids, id)
	}
	return peer.AcceptIDs(ids...), nil
}

// parseReply reads --reply: empty echoes, anything else is the answer.
func parseReply(v string) (*any, error) {
	if v == "" {
		return nil, nil
	}
	r, err := parseArg(v)
	if err != nil {
		return nil, usageError{fmt.Errorf("--reply %q: %w", v, err)}
	}
	return &r, nil
}

// requestError is a failed emit or ack: the verb as the user typed it, the
// event, and why.
type requestError struct {
	verb, event string
	err         error
}

func (e requestError) Error() string { return fmt.Sprintf("%s %q: %s", e.verb, e.event, reason(e.err)) }
func (e requestError) Unwrap() error { return e.err }

// validTarget checks a target id given on the command line.
func validTarget(flag, id string) error {
	if err := protocol.ValidateID(id); err != nil {
		return usageError{fmt.Errorf("%s: %w", flag, err)}
	}
	return nil
}

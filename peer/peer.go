package peer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	client "github.com/zishang520/socket.io/clients/socket/v3"
	sio "github.com/zishang520/socket.io/servers/socket/v3"
	"golang.org/x/time/rate"

	"github.com/p2prelay/p2prelay/internal/sioclient"
	"github.com/p2prelay/p2prelay/protocol"
)

// Peer is one device connected to a relay. Create it with Dial or New; its
// methods are safe for concurrent use. The caller must call Close.
type Peer struct {
	cfg   Config
	log   *slog.Logger
	owned bool // Dial made the socket: Peer reconnects and closes it
	opts  *client.Options
	disp  *dispatcher
	ctx   context.Context // ends when the peer stops: no more reconnecting
	halt  context.CancelFunc

	pairMu sync.Mutex // serialises Pair and Unpair
	// wmu serialises what the Peer writes on its sockets. The library
	// writes a packet with binary data as several frames, one at a time: a
	// packet written from another goroutine at the same moment can come
	// between them, and the relay closes a connection whose frames do not
	// follow each other.
	wmu sync.Mutex
	// chunks paces the chunks of every stream (Config.StreamRate); nil
	// for no bound.
	chunks *rate.Limiter

	mu        sync.Mutex     // guards every field below
	sock      *client.Socket // the current connection's socket
	upSock    *client.Socket // the socket onConnect ran for: connected while set
	listeners *listeners     // installed on sock
	everUp    bool           // connected at least once
	// peer is the current peer, "" when unpaired. It is kept while the
	// connection is down (held): the relay may keep the pair.
	peer       string
	held       bool                 // the connection dropped while paired; P2P_STATUS says if the pair was kept
	gonePeer   string               // the peer whose P2P_DISCONNECT was the relay's last word
	repairPeer string               // the device to pair again with once connected (Config.Repair)
	pairing    string               // the target of the Pair under way
	unpairing  bool                 // an Unpair is under way: the relay's P2P_UNREGISTER is its echo
	pairErr    *protocol.Error      // the relay's reason while pairing
	endRepair  context.CancelFunc   // ends the repair under way (Config.Repair), if any
	connErr    *protocol.Error      // the relay's last word about the connection
	streams    map[*Stream]struct{} // the open stream ends chunks go to
	handlers   map[string]func(Event)
	closed     bool
	leaving    bool  // Close told the relay the device is leaving
	err        error // why the peer stopped
	retryDelay time.Duration
}

// Connection attempts: one try to open a connection may take a third of
// Config.Timeout, within these bounds, before it counts as stuck and is
// tried again.
const (
	minAttempt = 500 * time.Millisecond
	maxAttempt = 3 * time.Second
)

// Dial connects to the relay at cfg.URL as device cfg.ID and waits until
// the relay accepted it, or ctx (bounded by cfg.Timeout when it has no
// deadline) ends; an unreachable relay is tried again until then. A
// refused or failed connection wraps ErrConnect, and the relay's refusal
// (protocol.CodeOf: UNAUTHORIZED, ID_IN_USE, BAD_ID...).
func Dial(ctx context.Context, cfg Config) (*Peer, error) {
	cfg, err := cfg.withDefaults(true)
	if err != nil {
		return nil, err
	}
	opts := client.DefaultOptions()
	query := url.Values{protocol.QueryClientID: {cfg.ID}}
	if cfg.Token != "" {
		query.Set(protocol.QueryToken, cfg.Token)
		opts.SetAuth(map[string]any{protocol.QueryToken: cfg.Token})
	}
	opts.SetQuery(query)
	// cfg.Transports holds only names withDefaults accepts.
	opts.SetTransports(sioclient.Transports(cfg.Transports))

	p := newPeer(cfg, true)
	p.opts = opts
	ctx, cancel := p.bound(ctx)
	defer cancel()
	if err := p.connect(ctx); err != nil {
		p.stop(ErrClosed)
		return nil, fmt.Errorf("peer: %w %s as %q: %w", ErrConnect, cfg.URL, cfg.ID, err)
	}
	return p, nil
}

// connect opens a new connection, which becomes the current one. It
// returns the relay's refusal as a *protocol.Error.
func (p *Peer) connect(ctx context.Context) error {
	s, err := sioclient.Connect(ctx, p.cfg.URL, sioclient.Options{
		Client:         p.opts,
		AttemptTimeout: min(max(p.cfg.Timeout/3, minAttempt), maxAttempt),
		Setup:          p.adopt,
	})
	if err != nil {
		var refused *sioclient.ConnectError
		if errors.As(err, &refused) {
			return refused.Err
		}
		return err
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		s.Close()
		return ErrClosed
	}
	// Connect returns on the socket's "connect", maybe before the Peer's
	// own listener ran: the Peer is up when Dial returns.
	p.onConnect(s)
	return nil
}

// New makes a Peer of a socket.io client socket the caller already has,
// connected (or connecting) to a relay with ?clientId= set to cfg.ID. The
// socket stays the caller's: Close detaches the Peer without disconnecting
// it, and its reconnection is the socket's own (Config's URL, Token,
// NoReconnect, ReconnectDelay* and Transports are not used). As with Dial,
// a pair is held while the socket is disconnected, and settled once it
// connects again.
func New(sock *client.Socket, cfg Config) (*Peer, error) {
	if sock == nil {
		return nil, errors.New("peer: New needs a socket")
	}
	cfg, err := cfg.withDefaults(false)
	if err != nil {
		return nil, err
	}
	p := newPeer(cfg, false)
	p.adopt(sock)
	if sock.Connected() {
		p.mu.Lock()
		p.everUp, p.upSock = true, sock
		p.mu.Unlock()
	}
	return p, nil
}

func newPeer(cfg Config, owned bool) *Peer {
	ctx, halt := context.WithCancel(context.Background())
	var chunks *rate.Limiter
	if cfg.StreamRate > 0 {
		chunks = rate.NewLimiter(rate.Limit(cfg.StreamRate), max(int(2*cfg.StreamRate), 1))
	}
	return &Peer{
		chunks:     chunks,
		cfg:        cfg,
		log:        cfg.Logger.With("id", cfg.ID),
		owned:      owned,
		disp:       newDispatcher(),
		ctx:        ctx,
		halt:       halt,
		handlers:   make(map[string]func(Event)),
		retryDelay: cfg.ReconnectDelay,
	}
}

// listeners are the Peer's listeners on one socket.
type listeners struct {
	any, connect, disconnect func(...any)
}

// adopt makes s the current socket and installs the Peer's listeners on
// it; they ignore s once another socket is current.
func (p *Peer) adopt(s *client.Socket) {
	current := func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.sock == s && !p.closed && !p.leaving
	}
	l := &listeners{
		any: func(args ...any) {
			if current() {
				// Events that came with the connection (what the relay held
				// while the device was away) are emitted before "connect":
				// the device is up once they come.
				p.onConnect(s)
				p.onAny(args...)
			}
		},
		connect: func(...any) {
			if current() {
				p.onConnect(s)
			}
		},
		disconnect: func(args ...any) {
			if current() {
				p.onDisconnect(s, args...)
			}
		},
	}
	p.mu.Lock()
	p.sock, p.listeners = s, l
	p.mu.Unlock()
	s.OnAny(l.any)
	_ = s.On("connect", l.connect)
	_ = s.On("disconnect", l.disconnect)
}

// emit writes an event on socket s, alone (see wmu).
func (p *Peer) emit(s *client.Socket, event string, args ...any) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	return s.Emit(event, args...)
}

// guarded returns ack writing its answer alone (see wmu); nil for nil.
func (p *Peer) guarded(ack sio.Ack) sio.Ack {
	if ack == nil {
		return nil
	}
	return func(vals []any, err error) {
		p.wmu.Lock()
		defer p.wmu.Unlock()
		ack(vals, err)
	}
}

// socket returns the current socket.
func (p *Peer) socket() *client.Socket {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sock
}

// ID returns the device id.
func (p *Peer) ID() string { return p.cfg.ID }

// Peer returns the device this one is paired with, if any.
func (p *Peer) Peer() (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peer, p.peer != ""
}

// Connected reports whether the connection to the relay is up.
func (p *Peer) Connected() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.upSock != nil && !p.closed
}

// Handle sets the handler of the events named event, replacing any
// previous one; a nil fn removes it. Events without a handler go to
// Config.OnEvent.
func (p *Peer) Handle(event string, fn func(Event)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if fn == nil {
		delete(p.handlers, event)
		return
	}
	p.handlers[event] = fn
}

// Done is closed when the peer has stopped (Close, or the relay refused it
// for good) and every handler call has returned.
func (p *Peer) Done() <-chan struct{} { return p.disp.done }

// Err returns why the peer stopped: nil while it runs and after Close.
func (p *Peer) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if errors.Is(p.err, ErrClosed) {
		return nil
	}
	return p.err
}

// Close stops the peer: it disconnects a socket Dial made (the relay frees
// the pair and tells the peer) or detaches from one given to New. A
// connected peer tells the relay it is leaving and returns once the relay
// has let its id go (Config.Timeout at most), so that a program run again
// at once with the same id is let in. No handler is called for what
// happens after Close; the calls already queued still run. It does not
// wait for them: see Done.
func (p *Peer) Close() error {
	p.halt() // no more reconnecting or pairing again
	p.leave()
	p.stop(ErrClosed)
	return nil
}

// leave tells the relay the device is going, and waits (Config.Timeout at
// most) until it has let the id go: a device that runs again at once, as a
// script does, finds its id free. A plain disconnect would do the same
// without the answer, and the Go socket.io client can lose it as it
// closes, which the relay would take for a network drop.
func (p *Peer) leave() {
	p.mu.Lock()
	s := p.upSock
	if !p.owned || p.closed || s == nil {
		p.mu.Unlock()
		return
	}
	// What the relay says from now on (its disconnect, the end of the
	// pair) is no news.
	p.upSock, p.leaving = nil, true
	p.mu.Unlock()
	done := make(chan struct{})
	if err := p.emit(s, protocol.EventLeave, sio.Ack(func([]any, error) { close(done) })); err != nil {
		return
	}
	t := time.NewTimer(p.cfg.Timeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// stop ends the peer for err, once.
func (p *Peer) stop(err error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.err = err
	s, l := p.sock, p.listeners
	p.mu.Unlock()
	p.halt()
	p.endStreams(fmt.Errorf("%w: %w", ErrStreamEnded, ErrClosed))
	if s != nil {
		if p.owned {
			s.Disconnect()
		} else {
			s.OffAny(l.any)
			s.RemoveListener("connect", l.connect)
			s.RemoveListener("disconnect", l.disconnect)
		}
	}
	if !errors.Is(err, ErrClosed) {
		// The relay refused the device for good: say so before stopping.
		p.notify(Notice{Kind: Closed, Err: err})
	}
	p.disp.close()
}

// notify queues a notice for Config.OnNotice; after Close it is dropped.
func (p *Peer) notify(n Notice) {
	if p.cfg.OnNotice == nil {
		return
	}
	p.disp.push(func() { p.cfg.OnNotice(n) })
}

// bound gives ctx the configured timeout when it has no deadline.
func (p *Peer) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, p.cfg.Timeout)
}

// ready checks that the peer can send a request now.
func (p *Peer) ready() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return fmt.Errorf("peer: %w", ErrClosed)
	case p.upSock == nil:
		return fmt.Errorf("peer: %w", ErrNotConnected)
	}
	return nil
}

// ackResult is what a relay request's ack brought.
type ackResult struct {
	args []any
	err  error
}

// request sends event with args and an ack, and waits for the answer.
// what names the request in errors.
func (p *Peer) request(ctx context.Context, what, event string, args ...any) ([]any, error) {
	return p.requestThen(ctx, nil, what, event, args...)
}

// requestThen is request with a hook that runs on the socket's goroutine
// when the answer arrives, before any later packet is handled, so that
// state changes in order with the events around them.
func (p *Peer) requestThen(ctx context.Context, hook func([]any), what, event string, args ...any) ([]any, error) {
	ctx, cancel := p.bound(ctx)
	defer cancel()
	ch, err := p.send(hook, what, event, args...)
	if err != nil {
		return nil, err
	}
	return await(ctx, what, ch)
}

// send sends event with args and an ack; the answer comes on the channel.
func (p *Peer) send(hook func([]any), what, event string, args ...any) (<-chan ackResult, error) {
	if err := p.ready(); err != nil {
		return nil, err
	}
	ch := make(chan ackResult, 1)
	all := append(args[:len(args):len(args)], sio.Ack(func(vals []any, err error) {
		if err == nil && hook != nil {
			hook(vals)
		}
		ch <- ackResult{vals, err}
	}))
	if err := p.emit(p.socket(), event, all...); err != nil {
		return nil, fmt.Errorf("peer: %s: %w", what, err)
	}
	return ch, nil
}

// await waits for the answer of a request sent with send.
func await(ctx context.Context, what string, ch <-chan ackResult) ([]any, error) {
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("peer: %s: %w (%w)", what, ErrNotConnected, r.err)
		}
		return r.args, nil
	case <-ctx.Done():
		return nil, timeoutError(ctx, what)
	}
}

// Pair asks the relay to pair this device with target and waits for the
// answer. It returns nil once paired (at once when already paired with
// target), or an error matching ErrOffline, ErrSelf, ErrBusy, ErrRefused or
// ErrTimeout (protocol.CodeOf gives the code). With Config.WaitForTarget
// it waits while the target is offline or busy, until ctx ends. A device
// paired with another one must Unpair first (ErrBusy). If ctx ends before
// the relay answers and the pair forms later, the Peer unpairs at once.
// Pair ends a repair under way (Config.Repair).
func (p *Peer) Pair(ctx context.Context, target string) error {
	if err := protocol.ValidateID(target); err != nil {
		return fmt.Errorf("peer: pair with %q: %w", target, err)
	}
	p.stopRepair()
	return p.pair(ctx, target, p.cfg.WaitForTarget)
}

// pair pairs with target; with wait it asks again, every
// Config.PairRetry, while the target is offline or busy, until ctx ends.
func (p *Peer) pair(ctx context.Context, target string, wait bool) error {
	if !wait {
		return p.pairOnce(ctx, target)
	}
	what := fmt.Sprintf("pair with %q", target)
	var last error // the last refusal that may pass
	for {
		actx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
		err := p.pairOnce(actx, target)
		cancel()
		if mayPass(err) {
			last = err
		}
		switch {
		case err == nil:
			return nil
		case ctx.Err() == nil && !mayPass(err), ctx.Err() != nil && last == nil:
			return err
		case ctx.Err() == nil:
			p.log.Debug("waiting for the target", "target", target, "err", err)
			select {
			case <-ctx.Done():
			case <-p.ctx.Done():
				return fmt.Errorf("peer: %s: %w", what, ErrClosed)
			case <-time.After(p.cfg.PairRetry):
				continue
			}
		}
		return fmt.Errorf("%w; the last answer: %s", timeoutError(ctx, what), protocol.AsError(last).Error())
	}
}

// mayPass reports whether a pairing refusal may not hold a moment later:
// the target is offline or busy, or the relay limits pairing requests.
func mayPass(err error) bool {
	switch protocol.CodeOf(err) {
	case protocol.CodeOffline, protocol.CodeBusy, protocol.CodeRateLimited:
		return true
	}
	return false
}

// pairOnce asks the relay once.
func (p *Peer) pairOnce(ctx context.Context, target string) error {
	p.pairMu.Lock()
	defer p.pairMu.Unlock()
	if err := p.ready(); err != nil {
		return err
	}
	p.mu.Lock()
	if p.peer == target {
		p.mu.Unlock()
		return nil
	}
	p.pairing, p.pairErr = target, nil
	p.mu.Unlock()

	ctx, cancel := p.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("pair with %q", target)
	result := make(chan error, 1)
	var abandoned bool // guarded by p.mu
	ack := sio.Ack(func(vals []any, err error) {
		p.mu.Lock()
		if abandoned {
			p.mu.Unlock()
			if err == nil && len(vals) > 0 && vals[0] == true {
				p.log.Debug("pairing answered after the caller gave up: unpairing", "target", target)
				_ = p.emit(p.socket(), protocol.EventUnregister, sio.Ack(func([]any, error) {}))
			}
			return
		}
		p.pairing = ""
		var res error
		switch {
		case err != nil:
			res = fmt.Errorf("peer: %s: %w (%w)", what, ErrNotConnected, err)
		case len(vals) > 0 && vals[0] == true:
			p.peer, p.held, p.gonePeer = target, false, ""
			p.notify(Notice{Kind: Paired, Peer: target})
		default:
			refusal := p.pairErr
			p.pairErr = nil
			if len(vals) > 1 {
				// The relay says why right after false.
				if e := protocol.ParseAckError(vals[1:2]); e != nil {
					refusal = e
				}
			}
			if refusal == nil {
				refusal = protocol.Errorf(protocol.CodeRefused, "device %q did not pair", target)
			}
			res = fmt.Errorf("peer: %s: %w", what, refusal)
		}
		// Answered before p.mu is let go: a caller giving up at the same
		// moment either finds the answer or has set abandoned first, so a
		// device that paired is never reported as timed out.
		result <- res
		p.mu.Unlock()
	})
	if err := p.emit(p.socket(), protocol.EventRegister, target, ack); err != nil {
		p.mu.Lock()
		p.pairing = ""
		p.mu.Unlock()
		return fmt.Errorf("peer: %s: %w", what, err)
	}
	select {
	case err := <-result:
		return err
	case <-ctx.Done():
		p.mu.Lock()
		abandoned = true
		p.pairing = ""
		p.mu.Unlock()
		select {
		case err := <-result: // answered while giving up
			return err
		default:
		}
		return timeoutError(ctx, what)
	}
}

// repair pairs again with target by itself (Config.Repair), waiting while
// it is offline or busy, until stopRepair or Close; a refusal is reported
// as a PairFailed notice.
func (p *Peer) repair(target string) {
	p.stopRepair()
	ctx, cancel := context.WithCancel(p.ctx)
	p.mu.Lock()
	p.endRepair = cancel
	p.mu.Unlock()
	go func() {
		defer cancel()
		err := p.pair(ctx, target, true)
		if err != nil && ctx.Err() == nil {
			p.notify(Notice{Kind: PairFailed, Peer: target, Err: err})
		}
	}()
}

// stopRepair ends the repair under way, if any.
func (p *Peer) stopRepair() {
	p.mu.Lock()
	cancel := p.endRepair
	p.endRepair = nil
	p.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// Unpair ends this device's pair. It fails with ErrNotPaired when the
// relay says there is none. It ends a repair under way (Config.Repair).
func (p *Peer) Unpair(ctx context.Context) error {
	p.stopRepair()
	p.pairMu.Lock()
	defer p.pairMu.Unlock()
	p.setUnpairing(true)
	defer p.setUnpairing(false)
	vals, err := p.requestThen(ctx, func([]any) {
		// Whatever the answer, the relay holds no pair for this device now.
		p.endPair(ReasonUnregistered)
		p.setUnpairing(false)
	}, "unpair", protocol.EventUnregister)
	if err != nil {
		return err
	}
	if len(vals) == 0 || vals[0] != true {
		if pe := protocol.ParseAckError(vals[min(1, len(vals)):]); pe != nil {
			return fmt.Errorf("peer: unpair: %w", pe)
		}
		return fmt.Errorf("peer: unpair: %w", errNoPeer)
	}
	return nil
}

// setUnpairing marks an Unpair under way, or over.
func (p *Peer) setUnpairing(on bool) {
	p.mu.Lock()
	p.unpairing = on
	p.mu.Unlock()
}

// relayPayload is the {targetClientId, event, args} of a relay request to
// the current peer, or ErrNotPaired. what names the request in errors.
func (p *Peer) relayPayload(what, event string, args []any) (map[string]any, error) {
	p.mu.Lock()
	peer := p.peer
	p.mu.Unlock()
	if peer == "" {
		return nil, fmt.Errorf("peer: %s: %w", what, errNoPeer)
	}
	if args == nil {
		args = []any{}
	}
	return map[string]any{protocol.KeyTargetClientID: peer, protocol.KeyEvent: event, protocol.KeyArgs: args}, nil
}

// Emit sends event with args to the peer and waits until the relay has
// forwarded it (or refused it: NOT_PAIRED, RESERVED_EVENT, TOO_LARGE, ...).
func (p *Peer) Emit(ctx context.Context, event string, args ...any) error {
	what := fmt.Sprintf("emit %q", event)
	payload, err := p.relayPayload(what, event, args)
	if err != nil {
		return err
	}
	vals, err := p.request(ctx, what, protocol.EventEmit, payload)
	if err != nil {
		return err
	}
	if pe := protocol.ParseAckError(vals); pe != nil {
		return fmt.Errorf("peer: %s: %w", what, pe)
	}
	return nil
}

// EmitAck sends event with args to the peer and waits for the peer's
// answer: the values it passed to its acknowledgement, in order. A refusal
// by the relay, or no answer from the peer within the relay's ack timeout
// (ErrTimeout), is an error; so is ctx ending first.
func (p *Peer) EmitAck(ctx context.Context, event string, args ...any) ([]any, error) {
	c, err := p.sendAck(ctx, event, args)
	if err != nil {
		return nil, err
	}
	a := c.wait()
	return a.Args, a.Err
}

// Answer is the outcome of EmitAckAsync: the peer's values, or why there
// are none.
type Answer struct {
	Args []any
	Err  error
}

// EmitAckAsync is EmitAck that returns as soon as the request is sent: the
// channel then gets exactly one Answer. Requests sent one after another by
// one goroutine, with or without an ack, reach the peer in that order.
// ctx bounds the wait for the answer.
func (p *Peer) EmitAckAsync(ctx context.Context, event string, args ...any) <-chan Answer {
	out := make(chan Answer, 1)
	c, err := p.sendAck(ctx, event, args)
	if err != nil {
		out <- Answer{Err: err}
		return out
	}
	go func() { out <- c.wait() }()
	return out
}

// ackCall is a relayed event sent with an ack, whose answer is awaited.
type ackCall struct {
	ctx    context.Context
	cancel context.CancelFunc
	what   string
	ch     <-chan ackResult
}

// sendAck sends a relayed event with an ack.
func (p *Peer) sendAck(ctx context.Context, event string, args []any) (*ackCall, error) {
	what := fmt.Sprintf("emit %q with ack", event)
	payload, err := p.relayPayload(what, event, args)
	if err != nil {
		return nil, err
	}
	ctx, cancel := p.bound(ctx)
	ch, err := p.send(nil, what, protocol.EventEmitAck, payload)
	if err != nil {
		cancel()
		return nil, err
	}
	return &ackCall{ctx: ctx, cancel: cancel, what: what, ch: ch}, nil
}

// wait returns the peer's answer, or the relay's refusal.
func (c *ackCall) wait() Answer {
	defer c.cancel()
	vals, err := await(c.ctx, c.what, c.ch)
	switch pe := protocol.ParseAckError(vals); {
	case err != nil:
	case pe != nil:
		vals, err = nil, fmt.Errorf("peer: %s: %w", c.what, pe)
	case vals == nil:
		vals = []any{}
	}
	return Answer{Args: vals, Err: err}
}

// Devices lists the devices connected to the relay, sorted by id; only
// those free to pair when onlyAvailable.
func (p *Peer) Devices(ctx context.Context, onlyAvailable bool) ([]protocol.DeviceEntry, error) {
	vals, err := p.request(ctx, "list devices", protocol.EventListDevices, map[string]any{"available": onlyAvailable})
	if err != nil {
		return nil, err
	}
	if pe := protocol.ParseAckError(vals); pe != nil {
		return nil, fmt.Errorf("peer: list devices: %w", pe)
	}
	if len(vals) != 1 {
		return nil, fmt.Errorf("peer: list devices: relay answered %d values, want 1", len(vals))
	}
	list, ok := vals[0].([]any)
	if !ok {
		return nil, fmt.Errorf("peer: list devices: relay answered %T, want an array", vals[0])
	}
	out := make([]protocol.DeviceEntry, 0, len(list))
	for _, v := range list {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("peer: list devices: entry is %T, want an object", v)
		}
		id, _ := m["id"].(string)
		avail, _ := m["available"].(bool)
		out = append(out, protocol.DeviceEntry{ID: id, Available: avail})
	}
	return out, nil
}

// Package sioclient connects the Go socket.io client to a relay reliably.
//
// The client library (clients/socket/v3) ports the JavaScript client, whose
// start-up assumes a single-threaded event loop. In Go two races follow:
// the manager can miss its engine's "open" event when the transport opens
// before the manager listens for it; its connect-timeout timer can be left
// running after a fast open and then close a healthy connection; and a
// socket created while the manager opens can send its namespace CONNECT
// twice, which the server answers by closing the connection. Connect
// avoids all three: it disables the library's connect timer and keeps its
// own, opens the manager first, retrying an attempt that stays stuck, and
// only then creates and connects the socket.
//
// The same start-up hides why a connection failed: a websocket dial that
// fails (connection refused) reports its error before the manager listens,
// so the library never passes it on; and the dial has no timeout, so a
// server that accepts TCP but never answers HTTP holds the caller for as
// long as the connection stays open. Connect wraps each transport to see
// its errors and bounds the websocket handshake by the attempt's timeout
// (see bound.go), so it says why at once when retrying cannot help, and
// its context's deadline holds.
//
// Because a stuck attempt inside the library's own reconnection would
// never be retried, Connect turns the library's reconnection off: callers
// that must survive a dropped connection call Connect again.
package sioclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	engine "github.com/zishang520/socket.io/clients/engine/v3"
	client "github.com/zishang520/socket.io/clients/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/p2prelay/p2prelay/protocol"
)

// defaultAttemptTimeout is how long one attempt to open the manager may
// take, unless Options say, before it counts as stuck and is retried.
const defaultAttemptTimeout = 3 * time.Second

// ErrStuck is returned when no attempt to open a connection got anywhere
// (none failed, none finished) before the context ended.
var ErrStuck = errors.New("could not open a connection to the relay")

// Options say how to connect.
type Options struct {
	// Client are the socket.io client options (query, auth, transports...).
	// Connect sets ForceNew and turns AutoConnect and the library's
	// reconnection off.
	Client *client.Options
	// Namespace is the namespace to join; default "/".
	Namespace string
	// AttemptTimeout bounds one attempt to open the manager; default 3s.
	AttemptTimeout time.Duration
	// Setup, when set, is called with the socket before it connects, so the
	// caller's listeners see every event from the first one on.
	Setup func(*client.Socket)
}

// ConnectError is the relay's refusal of the namespace connection (a
// connect_error): the relay answered, so retrying will not help. Err is a
// *protocol.Error when the relay gave its reason's code.
type ConnectError struct{ Err error }

func (e *ConnectError) Error() string { return e.Err.Error() }
func (e *ConnectError) Unwrap() error { return e.Err }

// Connect opens a connection to url and joins the namespace. It returns the
// connected socket, a *ConnectError when the relay refused it, or another
// error: at once when an attempt failed in a way that trying again at once
// cannot mend (Permanent: connection refused, unknown host, a TLS
// failure), else the last failure once ctx ended. The caller must Close
// the socket.
func Connect(ctx context.Context, url string, o Options) (*client.Socket, error) {
	if o.Client == nil {
		o.Client = client.DefaultOptions()
	}
	if o.Namespace == "" {
		o.Namespace = "/"
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = defaultAttemptTimeout
	}
	o.Client.SetForceNew(true)
	o.Client.SetAutoConnect(false)
	o.Client.SetReconnection(false)
	o.Client.SetTimeout(neverTimeout)

	var lastErr error // the last attempt that failed rather than stuck
	for {
		mgr, err := openManager(ctx, url, o)
		if err == nil {
			return joinNamespace(ctx, mgr, o)
		}
		if ctx.Err() != nil {
			return nil, gaveUp(lastErr)
		}
		if Permanent(err) {
			return nil, err
		}
		// A failure that may pass (the relay restarting answers 503, or
		// closes connections) is worth a pause; a stuck attempt is tried
		// again at once.
		if !errors.Is(err, errAttemptStuck) {
			lastErr = err
			select {
			case <-ctx.Done():
				return nil, gaveUp(lastErr)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}

// Permanent reports whether a failure to reach the relay will not mend by
// trying again soon: the connection was refused (nothing listens there),
// the host or the route to it is unknown, or TLS failed. A caller that
// waits for a relay to come back (after a restart, say) may still retry.
func Permanent(err error) bool {
	var dns *net.DNSError
	var cert *tls.CertificateVerificationError
	var header tls.RecordHeaderError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return true
	case errors.As(err, &dns):
		return dns.IsNotFound
	case errors.As(err, &cert), errors.As(err, &header):
		return true
	}
	return false
}

// gaveUp is Connect's error once its context ended: why the relay could
// not be reached, or ErrStuck when no attempt got that far.
func gaveUp(lastErr error) error {
	if lastErr == nil {
		return ErrStuck
	}
	return fmt.Errorf("could not reach the relay: %w", lastErr)
}

var errAttemptStuck = errors.New("connection attempt stuck")

// neverTimeout stands in for "no library connect timer": the library has no
// way to unset it, and its timer can outlive the open it guards.
const neverTimeout = 100 * 365 * 24 * time.Hour

// openManager opens a manager (the Engine.IO connection) and waits for it,
// the attempt's timeout at most. The library opens a websocket
// synchronously, so the manager opens on a goroutine of its own; an
// attempt given up is closed once its (bounded) dial returns. Each attempt
// has its own copy of the options, which the library writes to as it
// opens.
func openManager(ctx context.Context, url string, o Options) (*client.Manager, error) {
	opts := client.DefaultOptions()
	opts.Assign(o.Client)
	a := newAttempt(o.Client.Transports(), o.AttemptTimeout)
	if a != nil {
		opts.SetTransports(a.transports)
	}
	mgr := client.NewManager(url, opts)
	opened := make(chan error, 1)
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		mgr.Open(func(err error) {
			select {
			case opened <- err:
			default:
			}
		})
	}()
	giveUp := func(err error) (*client.Manager, error) {
		go func() {
			<-returned
			closeManager(mgr)
		}()
		return nil, err
	}
	t := time.NewTimer(o.AttemptTimeout)
	defer t.Stop()
	select {
	case err := <-opened:
		if err != nil {
			return giveUp(described(err))
		}
		<-returned // Open is done with the manager
		return mgr, nil
	case err := <-a.failed():
		return giveUp(err)
	case <-t.C:
		return giveUp(errAttemptStuck)
	case <-ctx.Done():
		return giveUp(ctx.Err())
	}
}

// closeManager closes a manager that did not open. The manager's connect
// timer (neverTimeout) is stopped only when the manager hears of an error
// or an open; an error its transport reported before it listened (a
// refused websocket dial, say) never reaches it, and the timer's goroutine
// would be left waiting for good. The error it is told here stops it.
func closeManager(mgr *client.Manager) {
	if e := mgr.Engine(); e != nil {
		e.Emit("error", errGivenUp)
		e.Close()
	}
}

var errGivenUp = errors.New("connection attempt given up")

// joinNamespace creates the socket on an open manager and waits until the
// relay accepts or refuses it.
func joinNamespace(ctx context.Context, mgr *client.Manager, o Options) (*client.Socket, error) {
	s := mgr.Socket(o.Namespace, o.Client)
	result := make(chan error, 1)
	send := func(err error) {
		select {
		case result <- err:
		default:
		}
	}
	_ = s.Once("connect", func(...any) { send(nil) })
	_ = s.Once("connect_error", func(args ...any) { send(&ConnectError{Err: refusal(args)}) })
	if o.Setup != nil {
		o.Setup(s)
	}
	s.Connect()
	select {
	case err := <-result:
		if err != nil {
			s.Close()
			return nil, err
		}
		return s, nil
	case <-ctx.Done():
		s.Close()
		return nil, ctx.Err()
	}
}

// Transports returns the client transports of names ("websocket",
// "polling"); other names are left out.
func Transports(names []string) *types.Set[engine.TransportCtor] {
	ts := types.NewSet[engine.TransportCtor]()
	for _, name := range names {
		switch name {
		case "websocket":
			ts.Add(client.WebSocket)
		case "polling":
			ts.Add(client.Polling)
		}
	}
	return ts
}

// refusal is the error of a connect_error's arguments: the relay's
// *protocol.Error when it sent a code, as the error's data (socket.io 4)
// or in its message ("CODE: text"), else the error as given.
func refusal(args []any) error {
	err := errors.New("connection refused")
	if len(args) > 0 {
		if e, ok := args[0].(error); ok {
			err = e
		} else {
			err = fmt.Errorf("%v", args[0])
		}
	}
	var xe *types.ExtendedError
	if errors.As(err, &xe) {
		if data, ok := xe.Data.(map[string]any); ok {
			if code, _ := data["code"].(string); code != "" {
				msg, _ := data["message"].(string)
				return &protocol.Error{Code: protocol.Code(code), Message: msg}
			}
		}
		if pe := protocol.ParseServerError(xe.Message); pe.Code != "" {
			return pe
		}
	}
	return err
}

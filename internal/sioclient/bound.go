package sioclient

import (
	"errors"
	"fmt"
	"net"
	"reflect"
	"time"
	"unsafe"

	ws "github.com/gorilla/websocket"
	engine "github.com/zishang520/socket.io/clients/engine/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// attempt is one attempt to open a manager. Its transports are the
// caller's, wrapped: a transport's first error reaches failed() even when
// the library misses it, and a websocket's handshake is bounded.
type attempt struct {
	transports *types.Set[engine.TransportCtor]
	errs       chan error
}

// newAttempt wraps transports for one attempt whose dials may take at most
// timeout. It returns nil when there are none to wrap (the library's
// defaults).
func newAttempt(transports *types.Set[engine.TransportCtor], timeout time.Duration) *attempt {
	if transports == nil || transports.Len() == 0 {
		return nil
	}
	a := &attempt{transports: types.NewSet[engine.TransportCtor](), errs: make(chan error, 1)}
	// The dial ends a little before the attempt, so that the attempt ends
	// with its error rather than as stuck.
	handshake := timeout * 9 / 10
	for _, t := range transports.Keys() {
		a.transports.Add(&watched{TransportCtor: t, attempt: a, handshake: handshake})
	}
	return a
}

// failed gives the attempt's first transport error; nil (never ready) for
// an attempt without wrapped transports.
func (a *attempt) failed() <-chan error {
	if a == nil {
		return nil
	}
	return a.errs
}

// watched makes the transports of one attempt.
type watched struct {
	engine.TransportCtor
	attempt   *attempt
	handshake time.Duration
}

// New makes the transport, bounds its websocket dial and reports its
// first error to the attempt. The library subscribes to the transport
// only after making it, and its websocket dials (and may fail) as it
// opens, before the manager listens: this listener is there first.
func (w *watched) New(s engine.Socket, o engine.SocketOptionsInterface) engine.Transport {
	t := w.TransportCtor.New(s, o)
	if d := websocketDialer(t); d != nil {
		d.HandshakeTimeout = w.handshake
	}
	_ = t.On("error", func(args ...any) {
		if len(args) == 0 {
			return
		}
		if err, ok := args[0].(error); ok && err != nil {
			select {
			case w.attempt.errs <- described(err):
			default:
			}
		}
	})
	return t
}

// websocketDialer returns the dialer of the library's websocket transport,
// or nil for another transport. The library makes its dialer without a
// handshake timeout and keeps it unexported; the field is found by name
// and type, so that a library version that changes it leaves dials
// unbounded rather than breaking (TestWebsocketDialerFound pins it).
func websocketDialer(t engine.Transport) *ws.Dialer {
	v := reflect.ValueOf(t)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil
	}
	f := v.Elem().FieldByName("dialer")
	if !f.IsValid() || f.Type() != reflect.TypeFor[*ws.Dialer]() {
		return nil
	}
	return *(**ws.Dialer)(unsafe.Pointer(f.UnsafeAddr()))
}

// described gives a transport error the text of its cause: the library's
// own errors say only where they happened ("xhr poll error").
func described(err error) error {
	var ne net.Error
	if te, ok := err.(*engine.Error); ok && te.Description != nil {
		return fmt.Errorf("%s: %w", te.Message, described(te.Description))
	}
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("no answer in time (%w)", err)
	}
	return err
}

package peer

import (
	"context"
	"errors"
	"fmt"

	"github.com/p2prelay/p2prelay/protocol"
)

// Errors to test with errors.Is. The relay's refusals are *protocol.Error
// values, which match these by code; protocol.CodeOf(err) gives the code.
var (
	// ErrOffline: the target is not connected.
	ErrOffline = &protocol.Error{Code: protocol.CodeOffline, Message: "the device is offline"}
	// ErrBusy: the target, or this device, is paired or pairing elsewhere.
	ErrBusy = &protocol.Error{Code: protocol.CodeBusy, Message: "busy"}
	// ErrRefused: the target said no.
	ErrRefused = &protocol.Error{Code: protocol.CodeRefused, Message: "refused"}
	// ErrSelf: a device cannot pair with itself.
	ErrSelf = &protocol.Error{Code: protocol.CodeSelf, Message: "cannot pair with yourself"}
	// ErrTimeout: no answer in time, from the target (the relay's pairing
	// or ack timeout) or from the relay (the request's context).
	ErrTimeout = &protocol.Error{Code: protocol.CodeTimeout, Message: "no answer in time"}
	// ErrNotPaired: the request needs a peer and this device has none.
	ErrNotPaired = &protocol.Error{Code: protocol.CodeNotPaired, Message: "not paired"}

	// errNoPeer: a request that needs a peer, on a device without one.
	errNoPeer = protocol.Errorf(protocol.CodeNotPaired, "this device has no peer")

	// ErrConnect wraps every failure to connect to the relay; the relay's
	// own refusal (UNAUTHORIZED, ID_IN_USE, ...) is wrapped too.
	ErrConnect = errors.New("could not connect to the relay")
	// ErrNotConnected: the connection is down (it may be reconnecting).
	ErrNotConnected = errors.New("not connected to the relay")
	// ErrClosed: the peer was closed.
	ErrClosed = errors.New("peer closed")
)

// timeoutError describes a request whose context ended. A deadline is a
// TIMEOUT (matching ErrTimeout and context.DeadlineExceeded); a
// cancellation stays context.Canceled.
func timeoutError(ctx context.Context, what string) error {
	err := ctx.Err()
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("peer: %s: %w (%w)", what, ErrTimeout, err)
	}
	return fmt.Errorf("peer: %s: %w", what, err)
}

// permanentRefusal reports whether a relay refusal of this connection means
// retrying is pointless.
func permanentRefusal(code protocol.Code) bool {
	switch code {
	case protocol.CodeKicked, protocol.CodeTakenOver, protocol.CodeUnauthorized, protocol.CodeBadID:
		return true
	}
	return false
}

package protocol

import (
	"errors"
	"fmt"
)

// Code is a stable, upper-case error code. A code's meaning never changes.
type Code string

// The error codes of PROTOCOL.md, plus the ones this relay adds.
const (
	CodeBadRequest    Code = "BAD_REQUEST"    // a request of the wrong shape
	CodeBadID         Code = "BAD_ID"         // an id that breaks the id rules
	CodeIDInUse       Code = "ID_IN_USE"      // another live connection holds the id
	CodeUnauthorized  Code = "UNAUTHORIZED"   // missing or invalid credentials
	CodeOffline       Code = "OFFLINE"        // the target is not connected
	CodeSelf          Code = "SELF"           // the target is the source itself
	CodeBusy          Code = "BUSY"           // one side is paired or pairing elsewhere
	CodeRefused       Code = "REFUSED"        // the target said no
	CodeTimeout       Code = "TIMEOUT"        // no answer in time
	CodeNotPaired     Code = "NOT_PAIRED"     // the target is not the sender's peer
	CodeReservedEvent Code = "RESERVED_EVENT" // a protocol or socket.io event name
	CodeTooLarge      Code = "TOO_LARGE"      // over the payload limit
	CodeRateLimited   Code = "RATE_LIMITED"   // over the rate limit
	CodeUnknownEvent  Code = "UNKNOWN_EVENT"  // new: an event the relay does not know
	CodeServerFull    Code = "SERVER_FULL"    // new: the relay is at its device limit
	CodeShuttingDown  Code = "SHUTTING_DOWN"  // new: the relay is stopping
	CodeKicked        Code = "KICKED"         // new: an operator disconnected the device
	CodeTakenOver     Code = "TAKEN_OVER"     // new: a new connection claimed the device's id
	CodeUnavailable   Code = "UNAVAILABLE"    // new: this relay node cannot reach the cluster's state
)

// Codes lists every code, in a stable order (for metrics and docs).
var Codes = []Code{
	CodeBadRequest, CodeBadID, CodeIDInUse, CodeUnauthorized, CodeOffline,
	CodeSelf, CodeBusy, CodeRefused, CodeTimeout, CodeNotPaired,
	CodeReservedEvent, CodeTooLarge, CodeRateLimited, CodeUnknownEvent,
	CodeServerFull, CodeShuttingDown, CodeKicked, CodeTakenOver, CodeUnavailable,
}

// Error is a refused request: a code and a human-readable message.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Error returns "CODE: message", the text SERVER_ERROR carries.
func (e *Error) Error() string {
	if e.Message == "" {
		return string(e.Code)
	}
	return string(e.Code) + ": " + e.Message
}

// Is matches another *Error with the same code, so errors.Is(err,
// &protocol.Error{Code: protocol.CodeBusy}) works through wrapping.
func (e *Error) Is(target error) bool {
	var t *Error
	if !errors.As(target, &t) {
		return false
	}
	return t.Code == e.Code
}

// AckPayload is the single ack argument that answers a refused
// P2P_EMIT_ACKNOWLEDGE: {"error": {"code": ..., "message": ...}}.
func (e *Error) AckPayload() map[string]any {
	return map[string]any{"error": e.ConnectErrorData()}
}

// ConnectErrorData is the data of a refused connection's connect_error
// (socket.io-client 4.x: err.data; 2.x: the "error" event's argument).
func (e *Error) ConnectErrorData() map[string]any {
	return map[string]any{"code": string(e.Code), "message": e.Message}
}

// AsError returns the *Error in err's chain, or, for an error without a
// code, a BAD_REQUEST carrying its text.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Errorf(CodeBadRequest, "%v", err)
}

// CodeOf returns the code of err if it is (or wraps) an *Error, else "".
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// ParseServerError splits a SERVER_ERROR text "CODE: message" into an *Error.
// A text without a code prefix yields an Error with an empty Code.
func ParseServerError(text string) *Error {
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c == ':' && i > 0 {
			msg := text[i+1:]
			if len(msg) > 0 && msg[0] == ' ' {
				msg = msg[1:]
			}
			return &Error{Code: Code(text[:i]), Message: msg}
		}
		if (c < 'A' || c > 'Z') && c != '_' {
			break
		}
	}
	return &Error{Message: text}
}

// ParseAckError recognises the {"error": {"code", "message"}} ack answer of a
// refused relay request. It returns nil when args is anything else.
func ParseAckError(args []any) *Error {
	if len(args) != 1 {
		return nil
	}
	m, ok := args[0].(map[string]any)
	if !ok || len(m) != 1 {
		return nil
	}
	inner, ok := m["error"].(map[string]any)
	if !ok {
		return nil
	}
	code, ok := inner["code"].(string)
	if !ok || code == "" {
		return nil
	}
	msg, _ := inner["message"].(string)
	return &Error{Code: Code(code), Message: msg}
}

// Package protocol holds the wire vocabulary of the P2P relay: event names,
// query keys, payload shapes, error codes and the rules for device ids.
//
// It has no dependencies so that the relay (package server), the Go peer
// (package peer), the admin stream and the tools can all share it.
package protocol

// Events a device sends to the relay, and the relay sends to devices.
const (
	// EventRegister asks the relay to pair with a target: (targetID, ack).
	// The relay sends it to the target as (sourceID, ack) to ask for consent.
	EventRegister = "P2P_REGISTER"
	// EventRegisterSuccess is a generation-1 target's "yes" to EventRegister.
	EventRegisterSuccess = "P2P_REGISTER_SUCCESS"
	// EventRegisterFailed is a generation-1 target's "no" to EventRegister.
	EventRegisterFailed = "P2P_REGISTER_FAILED"
	// EventDisconnect tells a device its peer is gone; it carries no arguments.
	EventDisconnect = "P2P_DISCONNECT"
	// EventUnregister ends a pair (generation 2): (ack) from the device; the
	// relay sends it to the peer with an ack callback.
	EventUnregister = "P2P_UNREGISTER"
	// EventEmit relays an event to the peer: ({target, event, args}).
	EventEmit = "P2P_EMIT"
	// EventEmitAck relays an event with an acknowledgement:
	// ({target, event, args}, ack).
	EventEmitAck = "P2P_EMIT_ACKNOWLEDGE"
	// EventRegisterStream opens a stream to the peer (generation 2):
	// (targetID, ack) from the device; the relay asks the peer with (ack)
	// alone, and its true or false goes back to the device.
	EventRegisterStream = "P2P_REGISTER_STREAM"
	// EventEmitStream names a stream chunk: relayed only with
	// P2P_EMIT_ACKNOWLEDGE, the peer receives (chunk, ack) and answers
	// when it can take the next chunk.
	EventEmitStream = "P2P_EMIT_STREAM"
	// EventListClients answers an array of connected device ids: (ack).
	EventListClients = "LIST_CLIENTS"
	// EventListDevices is new: (query?, ack) answers []DeviceEntry.
	EventListDevices = "P2P_LIST_DEVICES"
	// EventLeave is new: (ack). The device is leaving for good: the relay
	// frees its id and ends its pair at once (its peer is told), answers
	// the ack, then disconnects it. A client that must know its id is free
	// before it goes (a script run again at once) says so; a plain
	// disconnect does the same without the answer.
	EventLeave = "P2P_LEAVE"
	// EventStatus is new: (ack) answers {"id": own id, "peer": the peer's
	// id or null}. A device that reconnected asks it to learn whether its
	// pair was kept for it (the resume window).
	EventStatus = "P2P_STATUS"
	// EventServerError carries one string, "CODE: message", for every
	// refused request.
	EventServerError = "SERVER_ERROR"
)

// Query and handshake keys a device connects with.
const (
	// QueryDeviceID carries the id of a generation-1 device.
	QueryDeviceID = "deviceId"
	// QueryClientID carries the id of a generation-2 device.
	QueryClientID = "clientId"
	// QueryToken carries a device token, in the query or the handshake auth.
	QueryToken = "token"
)

// Payload keys of P2P_EMIT and P2P_EMIT_ACKNOWLEDGE.
const (
	KeyTargetDeviceID = "targetDeviceId" // generation 1
	KeyTargetClientID = "targetClientId" // generation 2
	KeyEvent          = "event"
	KeyArgs           = "args"
)

// Generation is the protocol generation a device speaks.
type Generation int

const (
	// Gen1 devices connect with ?deviceId= and answer pairing requests with
	// P2P_REGISTER_SUCCESS / P2P_REGISTER_FAILED events.
	Gen1 Generation = 1
	// Gen2 devices connect with ?clientId=, answer pairing through the ack,
	// and know P2P_UNREGISTER and LIST_CLIENTS.
	Gen2 Generation = 2
)

// String returns "gen1" or "gen2".
func (g Generation) String() string {
	switch g {
	case Gen1:
		return "gen1"
	case Gen2:
		return "gen2"
	}
	return "unknown"
}

// reservedEvents are event names a device may not make the relay emit.
var reservedEvents = map[string]struct{}{
	EventServerError: {},
	EventListClients: {},
	"connect":        {},
	"connect_error":  {},
	"disconnect":     {},
	"disconnecting":  {},
	"error":          {},
	"newListener":    {},
	"removeListener": {},
	// socket.io-client 2.x also emits these on the socket itself.
	"connect_timeout":   {},
	"reconnect":         {},
	"reconnect_attempt": {},
	"reconnecting":      {},
	"reconnect_error":   {},
	"reconnect_failed":  {},
}

// IsReservedEvent reports whether a relayed event may not carry this name:
// every P2P_* name, SERVER_ERROR, LIST_CLIENTS, socket.io's reserved names
// and the lifecycle events socket.io-client 2.x emits on its sockets.
func IsReservedEvent(name string) bool {
	if len(name) >= 4 && name[:4] == "P2P_" {
		return true
	}
	_, ok := reservedEvents[name]
	return ok
}

// DeviceEntry is one device in a P2P_LIST_DEVICES answer.
type DeviceEntry struct {
	ID        string `json:"id"`
	Available bool   `json:"available"`
}

// SplitAck takes the ack callback off an event's arguments, where
// socket.io puts it last when the sender asked for an answer. ack is nil
// when there is none.
func SplitAck(args []any) (rest []any, ack func([]any, error)) {
	if n := len(args); n > 0 {
		if fn, ok := args[n-1].(func([]any, error)); ok {
			return args[:n-1], fn
		}
	}
	return args, nil
}

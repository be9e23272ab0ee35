package server

import (
	"time"

	"github.com/p2prelay/p2prelay/protocol"
)

// EventKind names what happened in the relay.
type EventKind string

// The kinds of Event the relay publishes.
const (
	DeviceConnected    EventKind = "device_connected"
	DeviceDisconnected EventKind = "device_disconnected"
	DeviceUpdated      EventKind = "device_updated" // its transport changed (polling -> websocket)
	DeviceAway         EventKind = "device_away"    // its connection dropped; its pair waits for it (resume window)
	DeviceResumed      EventKind = "device_resumed" // it came back within its resume window, on a new connection
	PairRequested      EventKind = "pair_requested" // a handshake began: ID asked Peer
	PairCreated        EventKind = "pair_created"
	PairEnded          EventKind = "pair_ended"
	PairRefused        EventKind = "pair_refused"
)

// Reasons a pair ends, in Event.Reason for PairEnded.
const (
	ReasonUnregister = "unregister" // a side asked to unpair
	ReasonDisconnect = "disconnect" // a side disconnected
	ReasonKicked     = "kicked"     // an operator kicked a side
	ReasonBroken     = "broken"     // an operator broke the pair
	ReasonTakeover   = "takeover"   // a side's id was taken over by a new connection
	ReasonShutdown   = "shutdown"   // the relay is stopping
	ReasonAway       = "away"       // a side dropped and did not come back within the resume window
)

// Event is one thing that happened in the relay, as published to an Observer.
type Event struct {
	Kind   EventKind     `json:"kind"`
	Time   time.Time     `json:"time"`
	Node   string        `json:"node,omitempty"`   // the relay node it happened on
	Device *Device       `json:"device,omitempty"` // DeviceConnected, DeviceUpdated, DeviceAway, DeviceResumed
	ID     string        `json:"id,omitempty"`     // the device concerned; for pairs, the side that asked
	Peer   string        `json:"peer,omitempty"`   // for pairs, the other side
	Reason string        `json:"reason,omitempty"` // DeviceDisconnected, DeviceAway, PairEnded
	Code   protocol.Code `json:"code,omitempty"`   // PairRefused
}

// Observer receives the relay's events in the order the changes they report
// happened. OnEvent is called with the relay's state lock held: it must
// return quickly, must not block, and must not call back into the relay.
type Observer interface {
	OnEvent(Event)
}

// ObserverFunc adapts a function to an Observer.
type ObserverFunc func(Event)

// OnEvent calls f(e).
func (f ObserverFunc) OnEvent(e Event) { f(e) }

type nopObserver struct{}

func (nopObserver) OnEvent(Event) {}

package adminapi

import (
	"fmt"
	"time"
)

// Device is one connected device as the admin side shows it.
type Device struct {
	ID          string    `json:"id"`
	Available   bool      `json:"available"`         // no peer and no pairing under way
	Peer        string    `json:"peer"`              // the paired device, "" when none
	Pairing     string    `json:"pairing,omitempty"` // the device a pairing handshake is under way with
	Away        bool      `json:"away,omitempty"`    // its connection dropped; its pair waits for it (resume window)
	ConnectedAt time.Time `json:"connected_at"`
	Address     string    `json:"address"`
	Transport   string    `json:"transport"`  // "polling" or "websocket"
	Generation  string    `json:"generation"` // "gen1" (?deviceId=) or "gen2" (?clientId=)
	EngineIO    int       `json:"engine_io"`  // 3 for socket.io-client 2.x, 4 for 4.x
	Messages    uint64    `json:"messages"`   // events this device relayed (as of the snapshot)
}

// Pair is one live pair. A is the device that asked, B the one that accepted.
type Pair struct {
	A        string    `json:"a"`
	B        string    `json:"b"`
	Since    time.Time `json:"since"`
	Messages uint64    `json:"messages"` // events relayed between the two since they paired
}

// Stats are the relay's counters, sent once a second and in every snapshot.
type Stats struct {
	Time           time.Time         `json:"time"`
	Devices        int               `json:"devices"`
	Pairs          int               `json:"pairs"`
	Connects       uint64            `json:"connects"`
	Disconnects    uint64            `json:"disconnects"`
	Messages       uint64            `json:"messages"` // events relayed since the relay started
	Acks           uint64            `json:"acks"`     // acknowledgements piped back
	MessagesPerSec float64           `json:"messages_per_sec"`
	AcksPerSec     float64           `json:"acks_per_sec"`
	Paired         uint64            `json:"paired"`      // pairing requests that formed a pair
	Refusals       map[string]uint64 `json:"refusals"`    // refused requests by code
	PairFailed     map[string]uint64 `json:"pair_failed"` // failed pairing requests by code
	Subscribers    int               `json:"subscribers"` // admin stream subscribers
}

// Snapshot is the whole state at sequence number Seq: every event numbered
// Seq or lower is reflected in it. It is also the body of GET /admin/v1/state.
type Snapshot struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Devices []Device  `json:"devices"`
	Pairs   []Pair    `json:"pairs"`
	Stats   Stats     `json:"stats"`
}

// Kind names a Delta.
type Kind string

// The kinds of Delta in the admin stream.
const (
	KindDeviceConnected    Kind = "device_connected"
	KindDeviceDisconnected Kind = "device_disconnected"
	KindDeviceUpdated      Kind = "device_updated" // its transport changed
	KindDeviceAway         Kind = "device_away"    // its connection dropped; its pair waits for it (resume window)
	KindDeviceResumed      Kind = "device_resumed" // it came back within its resume window
	KindPairRequested      Kind = "pair_requested" // a pairing handshake began: ID asked Peer
	KindPairCreated        Kind = "pair_created"
	KindPairEnded          Kind = "pair_ended"
	KindPairRefused        Kind = "pair_refused"
	KindStats              Kind = "stats"   // once a second
	KindCommand            Kind = "command" // an operator's kick or unpair
)

// Delta is one change after a snapshot. Seq increases by one from delta to
// delta across the whole stream.
type Delta struct {
	Seq  uint64    `json:"seq"`
	Kind Kind      `json:"kind"`
	Time time.Time `json:"time"`
	// ID is the device concerned; for pairs, the side that asked.
	ID string `json:"id,omitempty"`
	// Peer is, for pairs, the other side.
	Peer string `json:"peer,omitempty"`
	// Device is the device that connected or changed (device_connected,
	// device_updated).
	Device *Device `json:"device,omitempty"`
	// Reason says why a device left or a pair ended.
	Reason string `json:"reason,omitempty"`
	// Code is the refusal code (pair_refused, a failed command).
	Code string `json:"code,omitempty"`
	// Stats are the counters (stats).
	Stats *Stats `json:"stats,omitempty"`
	// PairMessages are the message counts of the pairs that relayed since
	// the previous stats delta, keyed by the asking side (stats).
	PairMessages map[string]uint64 `json:"pair_messages,omitempty"`
	// PairRates are the messages per second of those pairs since the
	// previous stats delta, for each that was already paired then (stats).
	// A pair that is in neither map relayed nothing.
	PairRates map[string]float64 `json:"pair_rates,omitempty"`
	// Command is "kick" or "unpair" (command).
	Command string `json:"command,omitempty"`
	// By is the operator's address (command).
	By string `json:"by,omitempty"`
}

// Summary describes the delta in one line for people, without its time and
// sequence number.
func (d Delta) Summary() string {
	switch d.Kind {
	case KindDeviceConnected:
		if d.Device == nil {
			return fmt.Sprintf("%s connected", d.ID)
		}
		return fmt.Sprintf("%s connected from %s (%s, %s, EIO %d)", d.ID, d.Device.Address, d.Device.Transport, d.Device.Generation, d.Device.EngineIO)
	case KindDeviceDisconnected:
		return fmt.Sprintf("%s disconnected (%s)", d.ID, d.Reason)
	case KindDeviceAway:
		return fmt.Sprintf("%s away (%s); its pair with %s waits for it", d.ID, d.Reason, d.Peer)
	case KindDeviceResumed:
		if d.Device == nil {
			return fmt.Sprintf("%s is back", d.ID)
		}
		return fmt.Sprintf("%s is back with %s, from %s (%s)", d.ID, d.Peer, d.Device.Address, d.Device.Transport)
	case KindDeviceUpdated:
		if d.Device == nil {
			return fmt.Sprintf("%s changed", d.ID)
		}
		return fmt.Sprintf("%s now on %s", d.ID, d.Device.Transport)
	case KindPairRequested:
		return fmt.Sprintf("%s asked to pair with %s", d.ID, d.Peer)
	case KindPairCreated:
		return fmt.Sprintf("%s paired with %s (%s asked)", d.ID, d.Peer, d.ID)
	case KindPairEnded:
		return fmt.Sprintf("pair %s-%s ended (%s)", d.ID, d.Peer, d.Reason)
	case KindPairRefused:
		return fmt.Sprintf("%s could not pair with %s: %s", d.ID, d.Peer, d.Code)
	case KindStats:
		if d.Stats == nil {
			return "stats"
		}
		st := d.Stats
		return fmt.Sprintf("%d devices, %d pairs, %d messages (%.1f/s), %d acks (%.1f/s), %d refusals",
			st.Devices, st.Pairs, st.Messages, st.MessagesPerSec, st.Acks, st.AcksPerSec, st.TotalRefusals())
	case KindCommand:
		s := fmt.Sprintf("operator %s %s %s", d.By, CommandVerb(d.Command), d.ID)
		if d.Code != "" {
			s += ": refused, " + d.Code
		}
		return s
	}
	return string(d.Kind)
}

// commandVerbs say what a command did, for messages: "operator X kicked A".
var commandVerbs = map[string]string{CommandKick: "kicked", CommandUnpair: "broke the pair of"}

// CommandVerb says what command did ("kicked"), or returns its name when
// it is not a known command.
func CommandVerb(command string) string {
	if v, ok := commandVerbs[command]; ok {
		return v
	}
	return command
}

// TotalRefusals is the number of refused requests, all codes together.
func (s Stats) TotalRefusals() uint64 {
	var n uint64
	for _, v := range s.Refusals {
		n += v
	}
	return n
}

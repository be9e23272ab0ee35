package adminapi

import (
	"fmt"
	"sort"
	"strings"
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
	Messages    uint64    `json:"messages"`   // events this device relayed (as of the snapshot, then the stats deltas)
	// Refusals is how many of its requests the relay refused, all codes
	// together, as last sampled (the snapshot, then the stats deltas).
	Refusals uint64 `json:"refusals,omitempty"`
	// Node is the cluster node that holds its connection; "" (left out)
	// for a relay alone. Messages and Refusals are counted by that node:
	// another node's admin side shows them as 0.
	Node string `json:"node,omitempty"`
}

// DeviceDetail is everything the relay knows of one device: the body of
// GET /admin/v1/devices/ID, and what a watch (CommandWatch) sends once a
// second as EventDetail.
type DeviceDetail struct {
	Device
	// Time is when the relay was read.
	Time time.Time `json:"time"`
	// Offline says the device is not on the relay (a watch waits for it
	// to come back); the other fields are then empty.
	Offline bool `json:"offline,omitempty"`
	// TokenSubject is the subject of the device token it connected with,
	// which is always its id, and TokenExpires when that token expires;
	// both empty when device tokens are off.
	TokenSubject string    `json:"token_subject,omitempty"`
	TokenExpires time.Time `json:"token_expires,omitzero"`
	MessagesIn   uint64    `json:"messages_in"`  // messages it relayed
	MessagesOut  uint64    `json:"messages_out"` // messages relayed to it
	BytesIn      uint64    `json:"bytes_in"`     // bytes of arguments it sent
	BytesOut     uint64    `json:"bytes_out"`    // bytes of arguments relayed to it
	AcksOwed     int       `json:"acks_owed"`    // its peer's requests awaiting its answer
	AcksAwaited  int       `json:"acks_awaited"` // its requests awaiting its peer's answer
	Held         int       `json:"held"`         // messages held for it while it is away
	// RefusalsByCode are its refused requests by code.
	RefusalsByCode map[string]uint64 `json:"refusals_by_code"`
	// Watched says an operator is watching its traffic; Dropped is how much
	// of it the watch left out, over the relay's bound on events a second.
	Watched bool   `json:"watched"`
	Dropped uint64 `json:"dropped"`
}

// State describes the device in a few words: "available", "↔ B",
// "away ↔ B", "pairing with B", or "offline".
func (d *DeviceDetail) State() string {
	if d.Offline {
		return "offline"
	}
	return d.Device.State()
}

// State describes the device in a few words: "available", "↔ B",
// "away ↔ B" or "pairing with B".
func (d *Device) State() string {
	switch {
	case d.Away:
		return "away ↔ " + d.Peer
	case d.Peer != "":
		return "↔ " + d.Peer
	case d.Pairing != "":
		return "pairing with " + d.Pairing
	}
	return "available"
}

// RefusalSummary says how many of the device's requests were refused, by
// code, most first: "4: RATE_LIMITED 3, TOO_LARGE 1", or "none".
func (d *DeviceDetail) RefusalSummary() string {
	var total uint64
	codes := make([]string, 0, len(d.RefusalsByCode))
	for c, n := range d.RefusalsByCode {
		total += n
		codes = append(codes, c)
	}
	if total == 0 {
		return "none"
	}
	sort.Slice(codes, func(i, j int) bool {
		a, b := d.RefusalsByCode[codes[i]], d.RefusalsByCode[codes[j]]
		return a > b || (a == b && codes[i] < codes[j])
	})
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = fmt.Sprintf("%s %d", c, d.RefusalsByCode[c])
	}
	return fmt.Sprintf("%d: %s", total, strings.Join(parts, ", "))
}

// TokenSummary describes the device token the device connected with, as of
// now: "subject A · expires 2025-06-02 11:00 UTC (in 23h)", or that there
// is none.
func (d *DeviceDetail) TokenSummary(now time.Time) string {
	if d.TokenSubject == "" {
		return "none (device tokens are off)"
	}
	when := "in " + Compact(d.TokenExpires.Sub(now))
	if left := d.TokenExpires.Sub(now); left <= 0 {
		when = "expired " + Compact(-left) + " ago"
	}
	return fmt.Sprintf("subject %s · expires %s (%s)", d.TokenSubject, d.TokenExpires.UTC().Format("2006-01-02 15:04 UTC"), when)
}

// Compact formats a duration for people, in its largest unit: 42s, 5m,
// 3h, 2d.
func Compact(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", max(int(d.Seconds()), 0))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// Directions of Traffic.
const (
	DirIn  = "in"  // from the watched device
	DirOut = "out" // to the watched device
)

// Traffic is one thing a watched device sent or was sent: its name and
// size, never its payload.
type Traffic struct {
	Time time.Time `json:"time"`
	ID   string    `json:"id"`  // the watched device
	Dir  string    `json:"dir"` // DirIn or DirOut
	// Event is the relayed event's name, or the request's (P2P_REGISTER...).
	Event string `json:"event,omitempty"`
	Size  int    `json:"size,omitempty"` // bytes of arguments
	// Ack is set on the answer to an acknowledged request; RTT is its round
	// trip through the peer, in nanoseconds.
	Ack bool          `json:"ack,omitempty"`
	RTT time.Duration `json:"rtt,omitempty"`
	// Code is set when the relay refused the request or failed its ack,
	// and Reason says why.
	Code   string `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Summary describes the traffic in one line, without its time and device:
// "in  tick 24 B", "out ping ack 1.2ms", "in  refused RATE_LIMITED: ...".
func (t Traffic) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-3s", t.Dir)
	if t.Event != "" {
		b.WriteString(" " + t.Event)
	}
	if t.Ack {
		b.WriteString(" ack")
	}
	if t.Size > 0 {
		b.WriteString(" " + Bytes(uint64(t.Size)))
	}
	if t.Ack && t.RTT > 0 {
		b.WriteString(" in " + RoundTrip(t.RTT))
	}
	if t.Code != "" {
		b.WriteString(" refused " + t.Code)
		if t.Reason != "" {
			b.WriteString(": " + t.Reason)
		}
	}
	return b.String()
}

// TrafficBatch is what EventTraffic carries: the watched devices' traffic,
// oldest first.
type TrafficBatch struct {
	Traffic []Traffic `json:"traffic"`
	// Lost is how much traffic this subscriber's buffer could not hold
	// since the last batch (it reads too slowly).
	Lost uint64 `json:"lost,omitempty"`
}

// Bytes formats a byte count for people: 512 B, 1.5 KiB, 3.0 MiB.
func Bytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// RoundTrip formats a round-trip time with three significant digits at
// most: 850µs, 1.25ms, 2.3s.
func RoundTrip(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
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

// Node is one live node of a cluster, as its lease in Redis says, read
// once a second by the node serving the admin side.
type Node struct {
	ID      string `json:"id"`
	Address string `json:"address"` // where it serves devices
	// Self marks the node serving this admin side.
	Self bool `json:"self,omitempty"`
	// Devices is how many devices it holds, and Messages how many messages
	// it relayed since it started, as of its last renewal.
	Devices  int    `json:"devices"`
	Messages uint64 `json:"messages"`
	// MessagesPerSec is its rate between its last two renewals.
	MessagesPerSec float64 `json:"messages_per_sec"`
	// Started is when it joined; Renewed when it last renewed its lease.
	Started time.Time `json:"started"`
	Renewed time.Time `json:"renewed"`
	// LeaseAge is how long ago it renewed its lease (nanoseconds), as of
	// the snapshot or stats delta: a node renews every third of its lease,
	// and one whose lease runs out is taken for dead.
	LeaseAge time.Duration `json:"lease_age"`
}

// Snapshot is the whole state at sequence number Seq: every event numbered
// Seq or lower is reflected in it. It is also the body of GET /admin/v1/state.
type Snapshot struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Devices []Device  `json:"devices"`
	Pairs   []Pair    `json:"pairs"`
	Stats   Stats     `json:"stats"`
	// Node is the id of the cluster node serving this admin side, and
	// Nodes the cluster's live nodes, sorted by id; both left out for a
	// relay alone (p2pd without --redis).
	Node  string `json:"node,omitempty"`
	Nodes []Node `json:"nodes,omitempty"`
}

// Clustered reports whether the relay is a node of a cluster.
func (s *Snapshot) Clustered() bool { return s.Node != "" }

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
	// DevicesSampled says the stats delta carries the devices' counters,
	// which are read once a second, or less often with many devices (every
	// 5 s with 10,000). DeviceMessages are then the message counts of the
	// devices that relayed since the previous reading, DeviceRates their
	// messages per second since then, for each that was already connected
	// then (a device in neither relayed nothing), and DeviceRefusals the
	// refusal counts of the devices refused since then.
	DevicesSampled bool               `json:"devices_sampled,omitempty"`
	DeviceMessages map[string]uint64  `json:"device_messages,omitempty"`
	DeviceRates    map[string]float64 `json:"device_rates,omitempty"`
	DeviceRefusals map[string]uint64  `json:"device_refusals,omitempty"`
	// Nodes are the cluster's live nodes, sorted by id (stats, on a node
	// of a cluster, when it could read them).
	Nodes []Node `json:"nodes,omitempty"`
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
		on := ""
		if d.Device.Node != "" {
			on = " on " + d.Device.Node
		}
		return fmt.Sprintf("%s connected%s from %s (%s, %s, EIO %d)", d.ID, on, d.Device.Address, d.Device.Transport, d.Device.Generation, d.Device.EngineIO)
	case KindDeviceDisconnected:
		return fmt.Sprintf("%s disconnected: %s", d.ID, LeaveReason(d.Reason))
	case KindDeviceAway:
		return fmt.Sprintf("%s away: %s; its pair with %s waits for it", d.ID, LeaveReason(d.Reason), d.Peer)
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
		return fmt.Sprintf("pair %s ↔ %s formed (%s asked)", d.ID, d.Peer, d.ID)
	case KindPairEnded:
		return fmt.Sprintf("pair %s ↔ %s ended: %s", d.ID, d.Peer, PairEndReason(d.Reason))
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

// leaveReasons say in plain words why a device's connection ended, by the
// reason the relay reports (the socket.io library's, or the relay's own).
var leaveReasons = map[string]string{
	"transport close":             "its connection closed",
	"transport error":             "its connection failed",
	"ping timeout":                "it stopped answering heartbeats",
	"unresponsive":                "it stopped answering",
	"forced close":                "the relay closed its connection",
	"forced server close":         "the relay closed its connection",
	"server namespace disconnect": "the relay disconnected it",
	"server shutting down":        "the relay is shutting down",
	"client namespace disconnect": "it disconnected",
	"parse error":                 "it sent something the relay could not read",
	"left":                        "it left",
	"disconnect":                  "it disconnected",
	"kicked":                      "an operator kicked it",
	"taken over":                  "a new connection took its id",
	"did not come back":           "it did not come back within its resume window",
	"unpaired while away":         "its pair was broken while it was away",
}

// LeaveReason says in plain words why a device's connection ended, given
// the reason of a device_disconnected or device_away delta; a reason it
// does not know is returned as it is.
func LeaveReason(reason string) string {
	if s, ok := leaveReasons[reason]; ok {
		return s
	}
	if reason == "" {
		return "no reason given"
	}
	return reason
}

// pairEndReasons say in plain words why a pair ended, by Delta.Reason.
var pairEndReasons = map[string]string{
	"unregister": "a side unpaired",
	"disconnect": "a side disconnected",
	"kicked":     "an operator kicked a side",
	"broken":     "an operator broke it",
	"takeover":   "a new connection took a side's id",
	"shutdown":   "the relay is shutting down",
	"away":       "a side did not come back within its resume window",
}

// PairEndReason says in plain words why a pair ended, given the reason of
// a pair_ended delta; a reason it does not know is returned as it is.
func PairEndReason(reason string) string {
	if s, ok := pairEndReasons[reason]; ok {
		return s
	}
	if reason == "" {
		return "no reason given"
	}
	return reason
}

package server

import (
	"errors"
	"time"

	"github.com/p2prelay/p2prelay/protocol"
)

// Device is what the relay knows of one connected device.
type Device struct {
	ID          string              `json:"id"`
	ConnID      string              `json:"conn_id"` // the socket that holds the id
	Gen         protocol.Generation `json:"generation"`
	Address     string              `json:"address"`
	Transport   string              `json:"transport"`
	EngineIO    int                 `json:"engine_io"` // Engine.IO protocol: 3 (client 2.x) or 4
	ConnectedAt time.Time           `json:"connected_at"`
	Peer        string              `json:"peer"`    // the paired device, "" when none
	Pairing     string              `json:"pairing"` // the device a handshake is under way with, "" when none
	// Away is set while a paired device whose connection dropped is kept
	// for its resume window: its pair stands, its id waits for it.
	Away bool `json:"away,omitempty"`
	// TokenExpires is when the device token it connected with expires;
	// zero without device tokens.
	TokenExpires time.Time `json:"token_expires,omitzero"`
}

// Available reports whether the device can be asked to pair: it has no
// peer and is not in a handshake.
func (d Device) Available() bool { return d.Peer == "" && d.Pairing == "" }

// Pair is a live 1:1 pairing. A is the device that asked, B the one that
// accepted.
type Pair struct {
	A     string    `json:"a"`
	B     string    `json:"b"`
	Since time.Time `json:"since"`
}

// Other returns the side of the pair that is not id.
func (p Pair) Other(id string) string {
	if p.A == id {
		return p.B
	}
	return p.A
}

// Handshake is a pairing request under way: Src asked to pair with Dst and
// the relay is waiting for Dst's answer.
type Handshake struct {
	ID  uint64
	Src string
	Dst string
}

// Teardown is what ended when a device left or was replaced: the pair it
// was in and the handshakes it took part in, which the caller must resolve.
type Teardown struct {
	Device     Device      // the record that was removed or replaced
	Pair       *Pair       // the pair that ended, nil when none
	Handshakes []Handshake // handshakes cancelled with it
}

// Claim is what Add did beside claiming the id.
type Claim struct {
	// Replaced is what ended when a live holder was taken over; nil when
	// there was none.
	Replaced *Teardown
	// Resumed is set when the id was held by the same device, away within
	// its resume window: the newcomer takes its place in its pair.
	Resumed bool
	// Peer is the device's peer after the claim ("" when none).
	Peer string
}

// BeginResult says how a pairing request was settled by BeginPair.
type BeginResult struct {
	// Already is set when the source was already paired with the target.
	Already bool
	// Pair is set when the pair was made at once because the target had
	// itself asked the source (both sides asking each other at once).
	Pair *Pair
	// Crossed is the target's own handshake towards the source that the
	// immediate pairing resolved; its source must be answered true.
	Crossed *Handshake
	// Handshake is set when the target must be asked.
	Handshake *Handshake
}

// Outcome is the result of EndPair.
type Outcome struct {
	Handshake Handshake
	Pair      *Pair // the pair made, when accepted and both sides were still free
}

// ErrStale is returned by EndPair when the handshake is no longer under way
// (it was already answered, cancelled, or timed out).
var ErrStale = errors.New("handshake is no longer under way")

// Store holds the relay's device and pair state. Every method is atomic:
// an implementation shared by several relay nodes must make each one a
// single transaction. The in-memory store (NewMemoryStore) is the default.
type Store interface {
	// Add claims d.ID for the connection d.ConnID. An id held by a device
	// that is away is claimed at once, and the newcomer resumes its pair.
	// When a live connection holds the id, Add fails with an ID_IN_USE
	// *protocol.Error unless takeover is set: then the previous holder is
	// replaced and its pair and handshakes end, as Claim.Replaced says.
	Add(d Device, takeover bool) (Claim, error)
	// Remove drops id if connID still holds it, ending its pair and
	// handshakes. It reports false when connID no longer holds the id.
	Remove(id, connID string) (*Teardown, bool)
	// Suspend handles the drop of connID, if it still holds id: a paired
	// device is kept, away, with its pair, and only its handshakes end; a
	// device without a peer is removed as by Remove. kept says which. It
	// reports ok false when connID no longer holds the id.
	Suspend(id, connID string) (td *Teardown, kept, ok bool)
	// Get returns one device.
	Get(id string) (Device, bool)
	// Devices returns every device, in no particular order.
	Devices() []Device
	// Len returns the number of devices.
	Len() int
	// Pairs returns every live pair, in no particular order.
	Pairs() []Pair
	// Peer returns the peer of id, if it is paired.
	Peer(id string) (string, bool)
	// BeginPair starts pairing src with dst, or refuses at once with an
	// OFFLINE, SELF or BUSY *protocol.Error.
	BeginPair(src, dst string) (BeginResult, error)
	// EndPair settles a handshake: accepted, it pairs both sides; refused,
	// it frees them. It returns ErrStale when h is no longer under way.
	EndPair(h uint64, accept bool) (Outcome, error)
	// Incoming returns the handshake in which id is being asked, if any.
	Incoming(id string) (Handshake, bool)
	// Unpair ends id's pair and returns it.
	Unpair(id string) (Pair, bool)
}

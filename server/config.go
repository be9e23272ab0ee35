package server

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/p2prelay/p2prelay/protocol"
)

// DuplicatePolicy says what happens when a device connects with an id that
// a live connection already holds.
type DuplicatePolicy string

const (
	// DuplicateReject refuses the newcomer with ID_IN_USE (the default).
	DuplicateReject DuplicatePolicy = "reject"
	// DuplicateTakeover closes the old connection and gives the id to the
	// newcomer; the old connection's peer is told its pair ended.
	DuplicateTakeover DuplicatePolicy = "takeover"
)

// Defaults for Config's zero values.
const (
	DefaultPairTimeout    = 10 * time.Second
	DefaultAckTimeout     = 30 * time.Second
	DefaultMaxPayload     = 1 << 20 // bytes of arguments in one relayed message
	DefaultRate           = 200     // messages per second per device
	DefaultBurst          = 400
	DefaultPairRate       = 2 // pairing requests per second per device
	DefaultPairBurst      = 5
	DefaultMaxPendingAcks = 256 // relayed acks a device may leave unanswered
	// DefaultResumeWindow covers socket.io-client's first reconnection
	// attempts after a drop (2.x and 4.x wait 0.5-1.5 s, then 1-3 s), while
	// the peer of a device that is really gone learns it soon.
	DefaultResumeWindow    = 5 * time.Second
	DefaultResumeHold      = 256     // messages held for a device while it is away
	DefaultResumeHoldBytes = 4 << 20 // bytes held for a device while it is away
	// DefaultReclaimCheck is how long the holder of an id has to answer
	// when another connection claims the id.
	DefaultReclaimCheck = 2 * time.Second
)

// TokenVerifier checks that a device token proves the device's id
// (auth.Verifier implements it), and says when the token expires (zero:
// never). It returns an UNAUTHORIZED *protocol.Error.
type TokenVerifier interface {
	Verify(token, id string) (expires time.Time, err error)
}

// MaxDepth is how deeply relayed arguments may nest (BAD_REQUEST beyond).
const MaxDepth = protocol.MaxArgsDepth

// Unlimited, as a Config limit, turns the limit off.
const Unlimited = -1

// Config configures a Relay. The zero value is usable: every zero field
// takes its default.
type Config struct {
	// PairTimeout is how long a target has to answer a pairing request
	// before it counts as a refusal (TIMEOUT). Default DefaultPairTimeout.
	PairTimeout time.Duration
	// AckTimeout is how long a peer has to answer a relayed
	// P2P_EMIT_ACKNOWLEDGE before the sender's ack resolves with TIMEOUT.
	// Default DefaultAckTimeout.
	AckTimeout time.Duration
	// DuplicateID is the policy for an id already in use. Default reject.
	DuplicateID DuplicatePolicy
	// Store holds device and pair state. Default: NewMemoryStore.
	Store Store
	// Observer receives the relay's events. Default: none.
	Observer Observer
	// Logger receives structured logs. Default: a logger that discards.
	Logger *slog.Logger
	// Clock is the relay's time, for timestamps and timeouts. Default
	// SystemClock.
	Clock Clock

	// Tokens, when set, makes every device prove its id with a token; a
	// device with a valid token for an id in use takes the id over.
	Tokens TokenVerifier
	// MaxDevices refuses connections beyond this many devices (SERVER_FULL).
	// Zero or Unlimited: no limit.
	MaxDevices int
	// MaxPayload bounds the arguments of one relayed message or ack, in
	// bytes as JSON would count them (TOO_LARGE). Default DefaultMaxPayload;
	// Unlimited turns it off.
	MaxPayload int
	// Rate and Burst bound the requests of one device (a token bucket);
	// excess requests are refused with RATE_LIMITED. Defaults DefaultRate
	// and DefaultBurst; Rate Unlimited turns it off.
	Rate  float64
	Burst int
	// PairRate and PairBurst bound one device's pairing requests. Defaults
	// DefaultPairRate and DefaultPairBurst; PairRate Unlimited turns it off.
	PairRate  float64
	PairBurst int
	// MaxPendingAcks bounds the relayed acks waiting on one device's
	// answer; beyond it senders are refused with RATE_LIMITED. Default
	// DefaultMaxPendingAcks; Unlimited turns it off.
	MaxPendingAcks int

	// ResumeWindow is how long a paired device whose connection dropped
	// (transport closed, heartbeat missed; not an explicit disconnect) is
	// kept away with its pair: messages for it are held and delivered in
	// order if it comes back in time, and its peer is told nothing unless
	// it does not. Default DefaultResumeWindow; negative turns it off.
	ResumeWindow time.Duration
	// ResumeHold and ResumeHoldBytes bound what is held for one device
	// while it is away; beyond them senders are refused with OFFLINE.
	// Defaults DefaultResumeHold and DefaultResumeHoldBytes.
	ResumeHold      int
	ResumeHoldBytes int
	// ReclaimCheck is how long the live holder of an id has to answer when
	// another connection claims the id without a token: a holder that does
	// not answer is dropped and the newcomer admitted. Default
	// DefaultReclaimCheck; negative turns checks off (ID_IN_USE at once).
	ReclaimCheck time.Duration
}

// withDefaults returns c with every zero field set to its default, or an
// error for a value that cannot work.
func (c Config) withDefaults() (Config, error) {
	if c.ResumeWindow == 0 {
		c.ResumeWindow = DefaultResumeWindow
	}
	if c.ResumeHold <= 0 {
		c.ResumeHold = DefaultResumeHold
	}
	if c.ResumeHoldBytes <= 0 {
		c.ResumeHoldBytes = DefaultResumeHoldBytes
	}
	if c.ReclaimCheck == 0 {
		c.ReclaimCheck = DefaultReclaimCheck
	}
	if c.PairTimeout < 0 || c.AckTimeout < 0 {
		return c, fmt.Errorf("server: timeouts must not be negative")
	}
	if c.PairTimeout == 0 {
		c.PairTimeout = DefaultPairTimeout
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	switch c.DuplicateID {
	case "":
		c.DuplicateID = DuplicateReject
	case DuplicateReject, DuplicateTakeover:
	default:
		return c, fmt.Errorf("server: unknown duplicate-id policy %q (want reject or takeover)", c.DuplicateID)
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	if c.MaxDevices == 0 {
		c.MaxDevices = Unlimited
	}
	if c.MaxPayload == 0 {
		c.MaxPayload = DefaultMaxPayload
	}
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if c.Burst <= 0 {
		c.Burst = max(DefaultBurst, int(c.Rate))
	}
	if c.PairRate == 0 {
		c.PairRate = DefaultPairRate
	}
	if c.PairBurst <= 0 {
		c.PairBurst = DefaultPairBurst
	}
	if c.MaxPendingAcks == 0 {
		c.MaxPendingAcks = DefaultMaxPendingAcks
	}
	for name, v := range map[string]float64{
		"MaxDevices": float64(c.MaxDevices), "MaxPayload": float64(c.MaxPayload),
		"Rate": c.Rate, "PairRate": c.PairRate, "MaxPendingAcks": float64(c.MaxPendingAcks),
	} {
		if v < 0 && v != Unlimited {
			return c, fmt.Errorf("server: %s must be positive or Unlimited, got %v", name, v)
		}
	}
	if c.Store == nil {
		c.Store = NewMemoryStore(c.Clock.Now)
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

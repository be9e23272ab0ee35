package server

import (
	"fmt"
	"log/slog"
	"time"
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
	DefaultPairTimeout = 10 * time.Second
	DefaultAckTimeout  = 30 * time.Second
)

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
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// withDefaults returns c with every zero field set to its default, or an
// error for a value that cannot work.
func (c Config) withDefaults() (Config, error) {
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
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Store == nil {
		c.Store = NewMemoryStore(c.Now)
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

package peer

import (
	"cmp"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"time"

	"github.com/p2prelay/p2prelay/protocol"
)

// Defaults for Config's zero values.
const (
	DefaultTimeout           = 10 * time.Second
	DefaultReconnectDelay    = 500 * time.Millisecond
	DefaultReconnectDelayMax = 5 * time.Second
	DefaultPairRetry         = time.Second
	DefaultStreamChunk       = 256 << 10
	DefaultStreamWindow      = 1
	DefaultStreamBuffer      = 1 << 20
	// DefaultStreamRate keeps a device's chunks under p2pd's default
	// request rate (200 a second, bursts of 400), with room for a few
	// other requests.
	DefaultStreamRate = 190
)

// AcceptPolicy decides a pair request from device from while this device is
// free. It runs on the socket's goroutine while the Peer holds its state
// still, so that the answer and the pair it forms are one step: it must
// return quickly and must not call the Peer's methods.
type AcceptPolicy func(from string) bool

// AcceptAny accepts every pair request (the default, as the original client
// did).
func AcceptAny() AcceptPolicy { return func(string) bool { return true } }

// AcceptNone refuses every pair request.
func AcceptNone() AcceptPolicy { return func(string) bool { return false } }

// AcceptIDs accepts pair requests from the given device ids only.
func AcceptIDs(ids ...string) AcceptPolicy {
	allowed := slices.Clone(ids)
	return func(from string) bool { return slices.Contains(allowed, from) }
}

// Config configures a Peer. ID is required, and URL for Dial.
type Config struct {
	// URL is the relay's address, e.g. http://127.0.0.1:9000.
	URL string
	// ID is the device id this peer connects with.
	ID string
	// Token, when set, is sent as the device token, both in the handshake
	// auth ({token}) and in the query (?token=).
	Token string
	// Accept decides pair requests while the device is free. Default
	// AcceptAny.
	Accept AcceptPolicy
	// OnEvent receives the events from the peer that no Handle handler
	// takes. Events nobody handles are dropped; if the sender wanted an
	// acknowledgement, it gets the relay's TIMEOUT.
	OnEvent func(Event)
	// OnNotice receives the changes of the peer's state, in order.
	OnNotice func(Notice)
	// OnStream receives the streams the peer opens (see Stream), in order
	// with events and notices; it must not block (read on a goroutine of
	// its own). nil refuses streams, as the original client does until it
	// listens for them.
	OnStream func(*Stream)
	// StreamChunk is the largest chunk a stream writer sends, in bytes;
	// each chunk is one relayed message, bounded by the relay's
	// --max-payload (1 MiB by default). Default DefaultStreamChunk.
	StreamChunk int
	// StreamWindow is how many chunks a stream writer sends before the
	// first one is acknowledged. Default DefaultStreamWindow (1), as the
	// original: one chunk in flight.
	StreamWindow int
	// StreamBuffer is how many bytes a stream reader buffers before it
	// holds the writer back. Default DefaultStreamBuffer.
	StreamBuffer int
	// StreamRate bounds the chunks this device's streams send a second,
	// in bursts of twice as many, so as to stay within the relay's
	// request rate (--rate, --burst): a chunk the relay refuses ends its
	// stream. Default DefaultStreamRate; negative for no bound.
	StreamRate float64
	// Timeout bounds connecting and every request whose context has no
	// deadline. Default DefaultTimeout.
	Timeout time.Duration
	// NoReconnect turns automatic reconnection off (Dial only).
	NoReconnect bool
	// ReconnectDelay and ReconnectDelayMax bound the wait between
	// reconnection attempts, which doubles from the first to the second.
	// Defaults DefaultReconnectDelay and DefaultReconnectDelayMax.
	ReconnectDelay    time.Duration
	ReconnectDelayMax time.Duration
	// WaitForTarget makes Pair wait for a target that is offline or busy
	// (or while the relay limits pairing requests): it asks again every
	// PairRetry until the pair forms, the target refuses, or Pair's context
	// ends. Each request is bounded by Timeout; the wait only by the
	// context, so give it a deadline (or cancel it) to bound the wait.
	WaitForTarget bool
	// PairRetry is how long a waiting Pair, or a repair, waits before
	// asking an offline or busy target again. Default DefaultPairRetry; the
	// relay limits pairing requests per device (2 a second by default).
	PairRetry time.Duration
	// Repair makes the peer pair again by itself after a reconnect, when
	// the relay did not keep its pair (the connection stayed down past the
	// relay's resume window, or the relay restarted): with the device it
	// was paired with, waiting for it while it is offline or busy (every
	// PairRetry, without a deadline) until the pair forms, the device
	// refuses (a PairFailed notice), the connection drops again, or Pair or
	// Unpair is called.
	Repair bool
	// Transports lists the transports to try, "websocket" and/or
	// "polling" (Dial only). Default websocket alone: with the Go
	// socket.io client, a connection that starts on polling can lose its
	// last packets when it closes during the upgrade to websocket, and
	// polling alone can stall; use polling only where websocket is
	// blocked.
	Transports []string
	// Logger receives debug logs. Default: a logger that discards.
	Logger *slog.Logger
}

// withDefaults returns c with every zero field set, or an error for a value
// that cannot work. dial says whether URL and Transports matter.
func (c Config) withDefaults(dial bool) (Config, error) {
	if err := protocol.ValidateID(c.ID); err != nil {
		return c, fmt.Errorf("peer: config: %w", err)
	}
	if dial {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return c, fmt.Errorf("peer: config: relay URL %q must be http(s)://host[:port]", c.URL)
		}
		for _, t := range c.Transports {
			if t != "polling" && t != "websocket" {
				return c, fmt.Errorf("peer: config: unknown transport %q (want polling or websocket)", t)
			}
		}
		if len(c.Transports) == 0 {
			c.Transports = []string{"websocket"}
		}
	}
	if c.Timeout < 0 || c.ReconnectDelay < 0 || c.ReconnectDelayMax < 0 || c.PairRetry < 0 {
		return c, fmt.Errorf("peer: config: durations must not be negative")
	}
	c.Timeout = cmp.Or(c.Timeout, DefaultTimeout)
	c.ReconnectDelay = cmp.Or(c.ReconnectDelay, DefaultReconnectDelay)
	c.ReconnectDelayMax = cmp.Or(c.ReconnectDelayMax, DefaultReconnectDelayMax)
	c.PairRetry = cmp.Or(c.PairRetry, DefaultPairRetry)
	if c.StreamChunk < 0 || c.StreamWindow < 0 || c.StreamBuffer < 0 {
		return c, fmt.Errorf("peer: config: stream sizes must not be negative")
	}
	c.StreamChunk = cmp.Or(c.StreamChunk, DefaultStreamChunk)
	c.StreamWindow = cmp.Or(c.StreamWindow, DefaultStreamWindow)
	c.StreamBuffer = cmp.Or(c.StreamBuffer, DefaultStreamBuffer)
	c.StreamRate = cmp.Or(c.StreamRate, DefaultStreamRate)
	if c.ReconnectDelayMax < c.ReconnectDelay {
		c.ReconnectDelayMax = c.ReconnectDelay
	}
	if c.Accept == nil {
		c.Accept = AcceptAny()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

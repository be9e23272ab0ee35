// Package peer is the device side of the P2P relay: the Go counterpart of the
// original JavaScript client plugin. A Peer connects to a relay with an id,
// pairs 1:1 with another device, sends it events (with or without an
// acknowledgement) and answers the events it receives.
//
// It speaks protocol generation 2 on the wire (?clientId=, pairing answered
// through the ack, P2P_UNREGISTER), and the relay translates for
// generation-1 devices, so a Peer pairs with either generation.
//
// # Lifecycle
//
// Dial connects a new socket.io client; New wraps a socket the caller
// already has. Close disconnects (Dial) or detaches (New); Done is closed
// once the peer has stopped and every handler call has returned.
//
// Incoming events and notices (paired, unpaired, disconnected, reconnected,
// closed) are delivered one at a time, in the order they happened, on a
// goroutine of the Peer: a handler that blocks delays the ones after it, and
// a handler must not wait for Done.
//
// # Pairing
//
// Pair asks the relay to pair with a target and returns nil once paired, or
// an error whose code says why not: errors.Is(err, ErrOffline), ErrBusy,
// ErrRefused, ErrSelf, ErrTimeout. With Config.WaitForTarget it waits
// while the target is offline or busy. Unpair ends the pair. A pair
// request from another device is answered by Config.Accept when the device
// is free, and refused when it is paired with someone else or asking
// another device.
//
// # Reconnecting
//
// A Peer created by Dial reconnects when its connection drops, with the
// same id, waiting Config.ReconnectDelay between tries and doubling up to
// Config.ReconnectDelayMax. A relay that drops the connection of a paired
// device keeps the pair for a while (p2pd's resume window) and holds what
// the peer sends meanwhile; its peer is told nothing. So a Peer keeps its
// pair while it reconnects: it reports Disconnected, then Reconnected, then
// asks the relay (P2P_STATUS) whether the pair was kept: Resumed if it was
// (the held events follow, in order), Unpaired (ReasonConnectionLost) if
// not. With Config.Repair it then pairs again with that device by itself,
// waiting for it while it is offline or busy (a refusal is a PairFailed
// notice); so it does too when the relay ended the pair because it was
// shutting down. A Peer gives up (Closed) when the relay refuses it for
// good: kicked by an operator, its id taken over, or not authorised.
//
// # Streams
//
// OpenStream asks the peer for a stream, and Config.OnStream receives
// those the peer opens: a Stream is a byte stream both ends may write,
// carried as the original plugin's generation-2 stream chunks, with
// back-pressure, and an empty chunk as its end (see Stream).
//
// Close tells the relay the device is leaving (P2P_LEAVE) and returns once
// the relay has let the id go, so that the same id may connect again at
// once.
package peer

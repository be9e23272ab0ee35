package adminapi

// Status is the state of a subscription's connection to the admin stream.
type Status int

// The states of a subscription.
const (
	StatusConnecting   Status = iota // connecting or reconnecting
	StatusLive                       // connected, snapshot received, deltas flowing
	StatusDown                       // the relay is unreachable or the connection dropped; retrying
	StatusUnauthorized               // the relay refused the token; retrying
)

// String names the status for people.
func (s Status) String() string {
	switch s {
	case StatusConnecting:
		return "connecting"
	case StatusLive:
		return "live"
	case StatusDown:
		return "relay down"
	case StatusUnauthorized:
		return "token refused"
	}
	return "unknown"
}

// Update is one thing a subscription delivers, in order. A Snapshot
// replaces everything known; Deltas follow the last snapshot (or the
// previous deltas) without gaps.
type Update struct {
	Status   Status
	Err      error     // why the connection is down (StatusDown, StatusUnauthorized)
	Snapshot *Snapshot // a (re)sync
	Deltas   []Delta   // in sequence order, contiguous
	// Detail is a watched device's detail; Traffic is traffic of the
	// watched devices. Both come outside the numbered deltas.
	Detail  *DeviceDetail
	Traffic *TrafficBatch
}

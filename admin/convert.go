package admin

import (
	"time"

	"github.com/p2prelay/p2prelay/admin/adminapi"
	"github.com/p2prelay/p2prelay/server"
)

// The relay's types (package server) become the admin side's own (package
// adminapi) here, on their way into the stream.

// deviceOf converts the relay's view of a device; its node is kept on a
// node of a cluster only (a relay alone calls itself "local").
func deviceOf(d server.Device, clustered bool) adminapi.Device {
	out := adminapi.Device{
		ID:          d.ID,
		Available:   d.Available(),
		Peer:        d.Peer,
		Pairing:     d.Pairing,
		Away:        d.Away,
		ConnectedAt: d.ConnectedAt,
		Address:     d.Address,
		Transport:   d.Transport,
		Generation:  d.Gen.String(),
		EngineIO:    d.EngineIO,
	}
	if clustered {
		out.Node = d.Node
	}
	return out
}

// deltaOf converts a relay event; Seq is set by the hub.
func deltaOf(e server.Event, clustered bool) adminapi.Delta {
	d := adminapi.Delta{Kind: adminapi.Kind(e.Kind), Time: e.Time, ID: e.ID, Peer: e.Peer, Reason: e.Reason, Code: string(e.Code)}
	if e.Device != nil {
		dev := deviceOf(*e.Device, clustered)
		d.Device = &dev
	}
	return d
}

// statsOf converts the relay's counters; rates and subscribers are the
// hub's to fill in.
func statsOf(st server.Stats, now time.Time) adminapi.Stats {
	out := adminapi.Stats{
		Time:        now,
		Devices:     st.Devices,
		Pairs:       st.Pairs,
		Connects:    st.Connects,
		Disconnects: st.Disconnects,
		Messages:    st.Messages,
		Acks:        st.Acks,
		Paired:      st.Paired,
		Refusals:    make(map[string]uint64, len(st.Refusals)),
		PairFailed:  make(map[string]uint64, len(st.PairFailed)),
	}
	for c, n := range st.Refusals {
		out.Refusals[string(c)] = n
	}
	for c, n := range st.PairFailed {
		out.PairFailed[string(c)] = n
	}
	return out
}

// detailOf converts the relay's detail of a device, read at now.
func detailOf(d server.DeviceDetail, now time.Time, clustered bool) adminapi.DeviceDetail {
	out := adminapi.DeviceDetail{
		Device:         deviceOf(d.Device, clustered),
		Time:           now,
		TokenExpires:   d.TokenExpires,
		MessagesIn:     d.MessagesIn,
		MessagesOut:    d.MessagesOut,
		BytesIn:        d.BytesIn,
		BytesOut:       d.BytesOut,
		AcksOwed:       d.AcksOwed,
		AcksAwaited:    d.AcksAwaited,
		Held:           d.Held,
		RefusalsByCode: make(map[string]uint64, len(d.Refusals)),
		Watched:        d.Watched,
		Dropped:        d.Dropped,
	}
	if !d.TokenExpires.IsZero() {
		// A device token's subject is the id it proves.
		out.TokenSubject = d.ID
	}
	out.Messages = d.MessagesIn
	for c, n := range d.Refusals {
		out.RefusalsByCode[string(c)] = n
		out.Refusals += n
	}
	return out
}

// trafficOf converts one watched traffic.
func trafficOf(t server.Traffic) adminapi.Traffic {
	return adminapi.Traffic{Time: t.Time, ID: t.ID, Dir: t.Dir, Event: t.Event, Size: t.Size, Ack: t.Ack, RTT: t.RTT,
		Code: string(t.Code), Reason: t.Reason}
}

// Package adminapi is the admin side's contract, shared by the hub (package
// admin), its Go client (package adminclient) and the dashboard (package
// tui): the wire types of the admin stream and HTTP endpoints, the names
// they travel under, the State a subscriber builds from a snapshot and its
// deltas, and the Updates a subscription delivers.
//
// It imports neither the relay core nor socket.io, so that the dashboard
// builds without either.
package adminapi

import (
	"net/url"
	"strings"
)

// Where the admin side is served, as p2pd mounts it.
const (
	// NamespaceName is the socket.io namespace of the admin stream.
	NamespaceName = "/admin"
	// PathState is GET /admin/v1/state: the snapshot as JSON.
	PathState = "/admin/v1/state"
	// PathCommand is the ServeMux pattern of the HTTP commands:
	// POST /admin/v1/devices/ID/kick and POST /admin/v1/devices/ID/unpair.
	PathCommand = "/admin/v1/devices/{id}/{command}"
	// PathDevice is the ServeMux pattern of GET /admin/v1/devices/ID: one
	// device's DeviceDetail as JSON.
	PathDevice = "/admin/v1/devices/{id}"
)

// CommandPath returns the path of an HTTP command (CommandKick,
// CommandUnpair) on device id: PathCommand with the id escaped.
func CommandPath(id, command string) string {
	return strings.NewReplacer("{id}", url.PathEscape(id), "{command}", command).Replace(PathCommand)
}

// DevicePath returns the path of GET /admin/v1/devices/ID for device id.
func DevicePath(id string) string {
	return strings.Replace(PathDevice, "{id}", url.PathEscape(id), 1)
}

// Stream events the hub emits to a subscriber; each carries an ack that the
// subscriber must call once it has taken the payload in.
const (
	EventSnapshot = "snapshot" // (Snapshot, ack)
	EventDeltas   = "deltas"   // ([]Delta, ack)
	// The stream of a subscriber that watches devices (CommandWatch) also
	// carries, outside the numbered deltas:
	EventDetail  = "detail"  // (DeviceDetail, ack): a watched device, sampled once a second
	EventTraffic = "traffic" // (TrafficBatch, ack): the traffic of the watched devices
)

// AuthToken is the handshake auth key of the admin token.
const AuthToken = "token"

// Commands an admin subscriber may send, with an ack.
const (
	CommandKick   = "kick"   // (id, ack): disconnect a device
	CommandUnpair = "unpair" // (id, ack): break the pair a device is in
	CommandResync = "resync" // (ack): send a fresh snapshot
	// CommandWatch (id, ack) starts a device's detail and traffic tail on
	// this connection, and CommandUnwatch (id, ack) stops it. A watch lasts
	// until unwatched or the connection ends, and follows the device when it
	// reconnects. At most MaxWatches at once per connection.
	CommandWatch   = "watch"
	CommandUnwatch = "unwatch"
)

// MaxWatches is the most devices one admin connection may watch at once.
const MaxWatches = 16

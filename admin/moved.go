package admin

import (
	"github.com/p2prelay/p2prelay/admin/adminapi"
	"github.com/p2prelay/p2prelay/admin/adminclient"
)

// What p2pd's tests still use from before the Go client moved to package
// adminclient and the wire types to package adminapi. New code uses those
// packages; these go once cmd/p2pd no longer names them.

// ClientConfig configures a Client.
//
// Deprecated: use adminclient.ClientConfig.
type ClientConfig = adminclient.ClientConfig

// NewClient returns a Client.
//
// Deprecated: use adminclient.NewClient.
func NewClient(cfg ClientConfig) (*adminclient.Client, error) { return adminclient.NewClient(cfg) }

// States of a subscription.
//
// Deprecated: use adminapi.StatusDown and adminapi.StatusUnauthorized.
const (
	StatusDown         = adminapi.StatusDown
	StatusUnauthorized = adminapi.StatusUnauthorized
)

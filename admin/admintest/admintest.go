// Package admintest runs a relay with its admin side on loopback, for the
// tests of the packages and commands that use the admin stream.
package admintest

import (
	"testing"

	"github.com/p2prelay/p2prelay/admin"
	"github.com/p2prelay/p2prelay/internal/testkit"
	"github.com/p2prelay/p2prelay/server"
	"github.com/p2prelay/p2prelay/server/socketio"
)

// Token is the admin token Start uses unless the config names one.
const Token = "p2pa_admintest-token-0123456789"

// Env is a relay serving on 127.0.0.1 with its admin side attached as p2pd
// attaches it (Hub.Attach).
type Env struct {
	Relay *testkit.Relay
	Hub   *admin.Hub
	Token string
	URL   string // http://127.0.0.1:PORT
}

// Start serves a relay and its admin side until the test ends.
func Start(t testing.TB, cfg admin.Config) *Env {
	t.Helper()
	if cfg.Token == "" {
		cfg.Token = Token
	}
	hub, err := admin.New(cfg)
	if err != nil {
		t.Fatalf("admin.New: %v", err)
	}
	relay := testkit.StartRelay(t, socketio.ServiceConfig{Relay: server.Config{Observer: hub}})
	t.Cleanup(hub.Close) // runs before the relay's own cleanup
	if err := hub.Attach(relay.Service); err != nil {
		t.Fatalf("Attach: %v", err)
	}
	return &Env{Relay: relay, Hub: hub, Token: cfg.Token, URL: relay.URL}
}

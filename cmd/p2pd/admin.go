package main

import (
	"fmt"
	"log/slog"

	"github.com/p2prelay/p2prelay/admin"
)

// AdminFlags configure the admin side: the control-center stream, the
// state endpoint and the metrics.
type AdminFlags struct {
	AdminToken  string `help:"Token of the admin side (p2pctl, /admin/v1/state, /metrics). When empty, a random one is generated and logged once." env:"P2PD_ADMIN_TOKEN"`
	MetricsOpen bool   `help:"Serve /metrics without the admin token." env:"P2PD_METRICS_OPEN"`
}

// newHub builds the admin hub, generating a token when none was given.
// The caller must Close it.
func (f AdminFlags) newHub(log *slog.Logger) (*admin.Hub, error) {
	tok := f.AdminToken
	if tok == "" {
		var err error
		if tok, err = admin.GenerateToken(); err != nil {
			return nil, err
		}
		log.Warn("no admin token given; generated one for this run (set --admin-token or P2PD_ADMIN_TOKEN to choose it)", "admin_token", tok)
	}
	hub, err := admin.New(admin.Config{Token: tok, Logger: log.With("component", "admin"), MetricsOpen: f.MetricsOpen})
	if err != nil {
		return nil, fmt.Errorf("--admin-token: %w", err)
	}
	return hub, nil
}

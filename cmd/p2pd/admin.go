package main

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/p2prelay/p2prelay/admin"
	"github.com/p2prelay/p2prelay/internal/tokenfile"
)

// AdminFlags configure the admin side: the control-center stream, the
// state endpoint and the metrics.
type AdminFlags struct {
	AdminToken     string `help:"Token of the admin side (p2pctl, /admin/v1/state, /metrics). When empty, p2pd uses the one kept in --admin-token-file, generating it at the first start." env:"P2PD_ADMIN_TOKEN"`
	AdminTokenFile string `help:"File that keeps the generated admin token from one start to the next, readable only by its user; p2pctl on this machine reads it. Default: STATE-DIR/admin-token. \"none\" keeps no file: a new token each start, logged." env:"P2PD_ADMIN_TOKEN_FILE" placeholder:"FILE"`
	StateDir       string `help:"Folder of p2pd's state (the admin token file). Default: $XDG_STATE_HOME/p2pd, else ~/.local/state/p2pd." env:"P2PD_STATE_DIR" placeholder:"DIR"`
	MetricsOpen    bool   `help:"Serve /metrics without the admin token." env:"P2PD_METRICS_OPEN"`
}

// noTokenFile is the --admin-token-file that keeps no file.
const noTokenFile = "none"

// tokenPath returns the file that keeps the generated token, "" for none;
// chosen says whether the operator named it (or its folder).
func (f AdminFlags) tokenPath() (path string, chosen bool, err error) {
	switch {
	case f.AdminTokenFile == noTokenFile:
		return "", true, nil
	case f.AdminTokenFile != "":
		return f.AdminTokenFile, true, nil
	case f.StateDir != "":
		return filepath.Join(f.StateDir, tokenfile.FileName), true, nil
	}
	path, err = tokenfile.DefaultPath()
	return path, false, err
}

// adminToken returns the admin token: the one given, else the one kept in
// the token file (generated there at the first start), else, without a
// file, a new one, logged once.
func (f AdminFlags) adminToken(log *slog.Logger) (string, error) {
	if f.AdminToken != "" {
		return f.AdminToken, nil
	}
	path, chosen, err := f.tokenPath()
	if err == nil && path != "" {
		tok, created, ferr := tokenfile.LoadOrCreate(path, admin.GenerateToken)
		switch {
		case ferr == nil && created:
			log.Info("generated an admin token and kept it for the next starts; p2pctl on this machine reads it", "admin_token_file", path)
			return tok, nil
		case ferr == nil:
			log.Info("admin token read from its file", "admin_token_file", path)
			return tok, nil
		case chosen || errors.Is(ferr, tokenfile.ErrExposed):
			return "", fmt.Errorf("--admin-token-file: %w", ferr)
		}
		err = ferr
	}
	tok, gerr := admin.GenerateToken()
	if gerr != nil {
		return "", gerr
	}
	attrs := []any{"admin_token", tok}
	if err != nil {
		attrs = append(attrs, "token_file_error", err.Error())
	}
	log.Warn("generated an admin token for this run only (set --admin-token, or let p2pd keep one with --state-dir)", attrs...)
	return tok, nil
}

// newHub builds the admin hub with the admin token; on a node of a
// cluster (node not nil), it shows the whole cluster. The caller must
// Close it.
func (f AdminFlags) newHub(log *slog.Logger, node *clusterNode) (*admin.Hub, error) {
	tok, err := f.adminToken(log)
	if err != nil {
		return nil, err
	}
	cfg := admin.Config{Token: tok, Logger: log.With("component", "admin"), MetricsOpen: f.MetricsOpen}
	if node != nil {
		cfg.Node, cfg.Nodes = node.id, admin.NodeListerFunc(node.nodes)
	}
	hub, err := admin.New(cfg)
	if err != nil {
		if f.AdminToken == "" {
			return nil, fmt.Errorf("the admin token in its file: %w", err)
		}
		return nil, fmt.Errorf("--admin-token: %w", err)
	}
	return hub, nil
}

package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/p2prelay/p2prelay/admin"
	"github.com/p2prelay/p2prelay/admin/adminapi"
	"github.com/p2prelay/p2prelay/admin/adminclient"
	"github.com/p2prelay/p2prelay/internal/testkit"
	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server"
	"github.com/p2prelay/p2prelay/server/socketio"
)

// TestMain keeps every test of the package away from the user's own state
// folder: p2pd keeps its admin token there by default.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "p2pd-test-state-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_STATE_HOME", dir)
	os.Setenv("HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestAdminTokenKeptAcrossStarts(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	first, err := AdminFlags{}.adminToken(log)
	if err != nil || !strings.HasPrefix(first, admin.TokenPrefix) {
		t.Fatalf("first start: %q, %v", first, err)
	}
	second, err := AdminFlags{}.adminToken(log)
	if err != nil || second != first {
		t.Fatalf("second start: %q, %v; want the first's %q", second, err, first)
	}
	if strings.Contains(logs.String(), first) {
		t.Fatalf("the kept token was logged:\n%s", logs.String())
	}
	path, _, _ := AdminFlags{}.tokenPath()
	if want := filepath.Join(os.Getenv("XDG_STATE_HOME"), "p2pd", "admin-token"); path != want {
		t.Fatalf("token file %s, want %s", path, want)
	}
	if n := strings.Count(logs.String(), "admin_token_file="+path); n != 2 {
		t.Fatalf("the file is not named in the logs:\n%s", logs.String())
	}
	// A state folder, or a file, of the operator's choosing.
	dir := t.TempDir()
	tok, err := AdminFlags{StateDir: dir}.adminToken(log)
	if err != nil || tok == first {
		t.Fatalf("--state-dir: %q, %v", tok, err)
	}
	if again, _ := (AdminFlags{AdminTokenFile: filepath.Join(dir, "admin-token")}).adminToken(log); again != tok {
		t.Fatalf("--admin-token-file of the same file: %q, want %q", again, tok)
	}
	// A chosen token is never written down.
	if tok, err := (AdminFlags{AdminToken: "p2pa_chosen-token-000000", StateDir: t.TempDir()}).adminToken(log); err != nil || tok != "p2pa_chosen-token-000000" {
		t.Fatalf("--admin-token: %q, %v", tok, err)
	}
}

func TestAdminTokenFileRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(path, []byte("p2pa_open-for-all-0000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := (AdminFlags{AdminTokenFile: path}).adminToken(slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a token file others may read: %v", err)
	}
	// An unusable chosen folder fails; so does a token that is no admin token.
	if _, err := (AdminFlags{StateDir: "/proc/no/such/place"}).adminToken(slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("an unusable --state-dir was accepted")
	}
	jwt := filepath.Join(dir, "jwt")
	if err := os.WriteFile(jwt, []byte("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJBIn0.c2ln"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (AdminFlags{AdminTokenFile: jwt}).newHub(slog.New(slog.DiscardHandler), nil); protocol.CodeOf(err) != protocol.CodeUnauthorized {
		t.Fatalf("a device token in the file: %v", err)
	}
}

func TestAdminTokenWithoutFileLoggedOnce(t *testing.T) {
	var logs bytes.Buffer
	hub, err := AdminFlags{AdminTokenFile: "none"}.newHub(slog.New(slog.NewTextHandler(&logs, nil)), nil)
	if err != nil {
		t.Fatalf("newHub: %v", err)
	}
	defer hub.Close()
	if n := strings.Count(logs.String(), "admin_token="+admin.TokenPrefix); n != 1 {
		t.Fatalf("generated token logged %d times:\n%s", n, logs.String())
	}
}

func TestAdminTokenRejected(t *testing.T) {
	jwt := "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJBIn0.c2ln"
	for _, tok := range []string{jwt, "has space in it, sixteen+"} {
		if _, err := (AdminFlags{AdminToken: tok}).newHub(slog.New(slog.DiscardHandler), nil); protocol.CodeOf(err) != protocol.CodeUnauthorized {
			t.Errorf("token %q: %v, want UNAUTHORIZED", tok, err)
		}
	}
}

func TestAdminAttached(t *testing.T) {
	const tok = "p2pa_mount-test-token-123"
	hub, err := AdminFlags{AdminToken: tok}.newHub(slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	relay := testkit.StartRelay(t, socketio.ServiceConfig{Relay: server.Config{Observer: hub}})
	t.Cleanup(hub.Close)
	if err := hub.Attach(relay.Service); err != nil {
		t.Fatalf("Attach: %v", err)
	}
	testkit.Dial(t, relay.URL, "A")
	c, err := adminclient.NewClient(adminclient.ClientConfig{URL: relay.URL, Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := c.State(context.Background())
	if err != nil || len(snap.Devices) != 1 || snap.Devices[0].ID != "A" {
		t.Fatalf("State = %+v, %v", snap, err)
	}
	for path, want := range map[string]int{admin.PathMetrics: http.StatusUnauthorized, admin.PathState: http.StatusUnauthorized} {
		resp, err := http.Get(relay.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s without token = %d, want %d", path, resp.StatusCode, want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Wait)
	defer cancel()
	sub := c.Subscribe(ctx)
	defer sub.Close()
	for u := range sub.Updates() {
		if u.Snapshot != nil {
			if len(u.Snapshot.Devices) != 1 {
				t.Fatalf("snapshot %+v", u.Snapshot)
			}
			return
		}
		if u.Status == adminapi.StatusDown || u.Status == adminapi.StatusUnauthorized {
			t.Fatalf("stream: %s %v", u.Status, u.Err)
		}
	}
	t.Fatal("no snapshot from the admin stream")
}

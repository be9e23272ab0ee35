package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
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

func TestAdminTokenGeneratedAndLoggedOnce(t *testing.T) {
	var logs bytes.Buffer
	hub, err := AdminFlags{}.newHub(slog.New(slog.NewTextHandler(&logs, nil)))
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
		if _, err := (AdminFlags{AdminToken: tok}).newHub(slog.New(slog.DiscardHandler)); protocol.CodeOf(err) != protocol.CodeUnauthorized {
			t.Errorf("token %q: %v, want UNAUTHORIZED", tok, err)
		}
	}
}

func TestAdminAttached(t *testing.T) {
	const tok = "p2pa_mount-test-token-123"
	hub, err := AdminFlags{AdminToken: tok}.newHub(slog.New(slog.DiscardHandler))
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

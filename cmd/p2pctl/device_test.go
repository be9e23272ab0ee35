package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2prelay/p2prelay/admin"
	"github.com/p2prelay/p2prelay/admin/adminapi"
	"github.com/p2prelay/p2prelay/admin/admintest"
	"github.com/p2prelay/p2prelay/internal/testkit"
	"github.com/p2prelay/p2prelay/internal/tokenfile"
	"github.com/p2prelay/p2prelay/protocol"
)

// TestMain keeps every test of the package away from the user's own state
// folder, where p2pctl looks for p2pd's admin token.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "p2pctl-test-state-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_STATE_HOME", dir)
	os.Setenv("HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestDeviceCommand(t *testing.T) {
	env := relayWithDevices(t)
	flags := []string{"--url", env.URL, "--token", env.Token}
	r := p2pctl(t, append([]string{"device", "A", "--json"}, flags...)...)
	var det adminapi.DeviceDetail
	if err := json.Unmarshal([]byte(r.stdout), &det); r.code != 0 || err != nil {
		t.Fatalf("device --json: exit %d, %v: %s %s", r.code, err, r.stdout, r.stderr)
	}
	if det.ID != "A" || det.Peer != "B" || det.Transport != "websocket" || det.RefusalsByCode == nil || det.TokenSubject != "" {
		t.Fatalf("device --json: %+v", det)
	}
	r = p2pctl(t, append([]string{"device", "A"}, flags...)...)
	for _, want := range []string{"ID         A\n", "STATE      ↔ B\n", "TOKEN      none (device tokens are off)\n", "REFUSALS   none\n", "WATCHED    no\n"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Fatalf("device lacks %q:\n%s", want, r.stdout)
		}
	}
	p2pctl(t, append([]string{"device", "ghost"}, flags...)...).oneLineError(t, 1, "OFFLINE")
	p2pctl(t, append([]string{"device", "ghost"}, "--url", env.URL, "--token", "p2pa_wrong-token-0000")...).oneLineError(t, exitUnauthorized, "UNAUTHORIZED")
}

// TestWatchDevice: watch --device prints the device's traffic and its own
// events, nothing of the others.
func TestWatchDevice(t *testing.T) {
	env := admintest.Start(t, admin.Config{StatsInterval: 20 * time.Millisecond})
	a := testkit.Dial(t, env.URL, "A")
	b := testkit.Dial(t, env.URL, "B")
	testkit.Pair(t, a, b, "B", "A")
	done := make(chan result, 1)
	go func() {
		done <- p2pctl(t, "watch", "--device", "A", "--json", "--count", "3", "--url", env.URL, "--token", env.Token)
	}()
	watching := func() bool { d, ok := env.Relay.Relay.Detail("A"); return ok && d.Watched }
	deadline := time.Now().Add(testkit.Wait)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !watching() {
		if time.Now().After(deadline) {
			t.Fatal("A is not watched")
		}
		<-tick.C
	}
	testkit.Dial(t, env.URL, "C") // not A's: not printed
	a.Emit(protocol.EventEmit, map[string]any{protocol.KeyTargetClientID: "B", "event": "hello", "args": []any{1}})
	b.Next("hello")
	a.Emit(protocol.EventEmit, map[string]any{protocol.KeyTargetClientID: "B", "event": "P2P_EMIT"})
	a.ServerError()
	_ = env.Hub.Unpair("B", "test") // A's pair: printed
	var r result
	select {
	case r = <-done:
	case <-time.After(2 * testkit.Wait):
		t.Fatal("watch --device --count 3 did not exit")
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 3 {
		t.Fatalf("watch --device: %+v", r)
	}
	var kinds []string
	for _, l := range lines {
		var v struct {
			Kind, ID, Event, Code string
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("line %s: %v", l, err)
		}
		if v.ID != "A" && !strings.Contains(l, `"peer":"A"`) {
			t.Fatalf("a line of another device: %s", l)
		}
		kinds = append(kinds, v.Kind+":"+v.Event+v.Code)
	}
	if got := strings.Join(kinds, " "); got != "traffic:hello traffic:RESERVED_EVENT pair_ended:" {
		t.Fatalf("lines %s:\n%s", got, r.stdout)
	}
	if r := p2pctl(t, "watch", "--device", "ghost", "--url", env.URL, "--token", env.Token); r.code != 1 || !strings.Contains(r.stderr, "OFFLINE") {
		t.Fatalf("watch --device of a device not there: %+v", r)
	}
}

// TestTokenFromP2pdsFile: without --token, p2pctl reads the token p2pd
// keeps, for a relay on this machine only.
func TestTokenFromP2pdsFile(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	env := relayWithDevices(t)
	path, err := tokenfile.DefaultPath()
	if err != nil {
		t.Fatal(err)
	}
	p2pctl(t, "pairs", "--url", env.URL).oneLineError(t, exitUnauthorized, "not there")
	if _, _, err := tokenfile.LoadOrCreate(path, func() (string, error) { return env.Token, nil }); err != nil {
		t.Fatal(err)
	}
	if r := p2pctl(t, "pairs", "--json", "--url", env.URL); r.code != 0 || !strings.Contains(r.stdout, `"a": "A"`) {
		t.Fatalf("pairs with the token of p2pd's file: %+v", r)
	}
	host := strings.Replace(env.URL, "127.0.0.1", "localhost", 1)
	if r := p2pctl(t, "pairs", "--url", host); r.code != 0 {
		t.Fatalf("localhost: %+v", r)
	}
	// Another machine's relay never gets this machine's token.
	p2pctl(t, "pairs", "--url", "http://192.0.2.1:9000").oneLineError(t, exitUnauthorized, "not on this machine")
	// A file of one's choosing; --token over everything.
	other := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(other, []byte("p2pa_wrong-token-0000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p2pctl(t, "pairs", "--url", env.URL, "--token-file", other).oneLineError(t, exitUnauthorized, "UNAUTHORIZED")
	if r := p2pctl(t, "pairs", "--url", env.URL, "--token-file", other, "--token", env.Token); r.code != 0 {
		t.Fatalf("--token over --token-file: %+v", r)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	p2pctl(t, "pairs", "--url", env.URL).oneLineError(t, exitUnauthorized, "chmod 600")

}

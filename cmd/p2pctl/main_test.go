package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/p2prelay/p2prelay/admin"
	"github.com/p2prelay/p2prelay/admin/adminapi"
	"github.com/p2prelay/p2prelay/admin/admintest"
	"github.com/p2prelay/p2prelay/internal/testkit"
	"github.com/p2prelay/p2prelay/protocol"
)

type result struct {
	code           int
	stdout, stderr string
}

func p2pctl(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*testkit.Wait)
	defer cancel()
	var out, errOut bytes.Buffer
	code := run(ctx, args, &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

func (r result) oneLineError(t *testing.T, code int, want string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d; stderr %q", r.code, code, r.stderr)
	}
	if !strings.HasPrefix(r.stderr, "p2pctl: ") || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, want) {
		t.Fatalf("stderr %q, want one line with %q", r.stderr, want)
	}
}

// relayWithDevices runs a relay with A paired to B, and C alone.
func relayWithDevices(t *testing.T) *admintest.Env {
	t.Helper()
	env := admintest.Start(t, admin.Config{})
	a := testkit.Dial(t, env.URL, "A")
	b := testkit.Dial(t, env.URL, "B")
	testkit.Dial(t, env.URL, "C")
	testkit.Pair(t, a, b, "B", "A")
	return env
}

func TestDevicesAndPairs(t *testing.T) {
	env := relayWithDevices(t)
	flags := []string{"--url", env.URL, "--token", env.Token}

	r := p2pctl(t, append([]string{"devices", "--json"}, flags...)...)
	var devs []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &devs); r.code != 0 || err != nil {
		t.Fatalf("devices --json: exit %d, %v: %s %s", r.code, err, r.stdout, r.stderr)
	}
	if len(devs) != 3 || devs[0]["id"] != "A" || devs[0]["peer"] != "B" || devs[0]["available"] != false || devs[2]["available"] != true {
		t.Fatalf("devices %v", devs)
	}
	for _, key := range []string{"id", "available", "peer", "connected_at", "address", "transport"} {
		if _, ok := devs[0][key]; !ok {
			t.Fatalf("device lacks %q: %v", key, devs[0])
		}
	}

	r = p2pctl(t, append([]string{"devices", "--available", "--json"}, flags...)...)
	if err := json.Unmarshal([]byte(r.stdout), &devs); err != nil || len(devs) != 1 || devs[0]["id"] != "C" {
		t.Fatalf("devices --available --json: %s", r.stdout)
	}

	r = p2pctl(t, append([]string{"devices"}, flags...)...)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 4 || !strings.HasPrefix(lines[0], "ID ") || !strings.HasPrefix(lines[1], "A ") || !strings.Contains(lines[1], " B ") {
		t.Fatalf("devices:\n%s", r.stdout)
	}

	r = p2pctl(t, append([]string{"pairs", "--json"}, flags...)...)
	var pairs []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &pairs); err != nil || len(pairs) != 1 || pairs[0]["a"] != "A" || pairs[0]["b"] != "B" || pairs[0]["messages"] != float64(0) || pairs[0]["since"] == nil {
		t.Fatalf("pairs --json: %s", r.stdout)
	}
	r = p2pctl(t, append([]string{"pairs"}, flags...)...)
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], "A ") {
		t.Fatalf("pairs:\n%s", r.stdout)
	}

	// Environment variables stand in for the flags.
	t.Setenv("P2PCTL_URL", env.URL)
	t.Setenv("P2PCTL_TOKEN", env.Token)
	if r := p2pctl(t, "pairs", "--json"); r.code != 0 || !strings.Contains(r.stdout, `"a": "A"`) {
		t.Fatalf("pairs from the environment: %+v", r)
	}
}

func TestEmptyListsAreArrays(t *testing.T) {
	env := admintest.Start(t, admin.Config{})
	for _, cmd := range []string{"devices", "pairs"} {
		r := p2pctl(t, cmd, "--json", "--url", env.URL, "--token", env.Token)
		if r.code != 0 || strings.TrimSpace(r.stdout) != "[]" {
			t.Fatalf("%s --json on an empty relay: %+v", cmd, r)
		}
	}
}

func TestKickAndUnpair(t *testing.T) {
	env := relayWithDevices(t)
	flags := []string{"--url", env.URL, "--token", env.Token}
	if r := p2pctl(t, append([]string{"unpair", "B"}, flags...)...); r.code != 0 || r.stdout != "broke the pair of B\n" {
		t.Fatalf("unpair: %+v", r)
	}
	p2pctl(t, append([]string{"unpair", "B"}, flags...)...).oneLineError(t, 1, "NOT_PAIRED")
	if r := p2pctl(t, append([]string{"kick", "C"}, flags...)...); r.code != 0 || r.stdout != "kicked C\n" {
		t.Fatalf("kick: %+v", r)
	}
	p2pctl(t, append([]string{"kick", "C"}, flags...)...).oneLineError(t, 1, "OFFLINE")
	p2pctl(t, append([]string{"kick", "bad\x01id"}, flags...)...).oneLineError(t, 1, "BAD_ID")
	snap, err := env.Hub.Snapshot(), error(nil)
	if err != nil || len(snap.Pairs) != 0 || len(snap.Devices) != 2 {
		t.Fatalf("after kick and unpair: %+v", snap)
	}
}

func TestWrongTokenAndUnreachableRelay(t *testing.T) {
	env := admintest.Start(t, admin.Config{})
	for _, args := range [][]string{{"devices"}, {"pairs", "--json"}, {"watch"}, {"kick", "A"}, {"unpair", "A"}} {
		r := p2pctl(t, append(args, "--url", env.URL, "--token", "p2pa_wrong-token-0000000000")...)
		r.oneLineError(t, exitUnauthorized, "UNAUTHORIZED")
		r = p2pctl(t, append(args, "--url", "http://127.0.0.1:1", "--token", env.Token)...)
		r.oneLineError(t, exitUnreachable, "relay unreachable")
		r = p2pctl(t, append(args, "--url", env.URL)...)
		r.oneLineError(t, exitUnauthorized, "no admin token")
	}
	p2pctl(t, "devices", "--url", "127.0.0.1:9000", "--token", "x").oneLineError(t, 1, "want http://host:port")
	p2pctl(t, "watch", "--count=-1", "--url", env.URL, "--token", env.Token).oneLineError(t, 1, "--count")
}

func TestUsage(t *testing.T) {
	if r := p2pctl(t, "--help"); r.code != 0 || !strings.Contains(r.stdout, "watch") || !strings.Contains(r.stdout, "nodes") || !strings.Contains(r.stdout, "P2PCTL_TOKEN") {
		t.Fatalf("--help: %+v", r)
	}
	if r := p2pctl(t, "frobnicate"); r.code == 0 || !strings.Contains(r.stderr, "frobnicate") {
		t.Fatalf("unknown command: %+v", r)
	}
	if r := p2pctl(t, "kick"); r.code == 0 {
		t.Fatalf("kick without an id: %+v", r)
	}
}

func TestWatchCount(t *testing.T) {
	env := admintest.Start(t, admin.Config{StatsInterval: time.Hour})
	done := make(chan result, 1)
	go func() { done <- p2pctl(t, "watch", "--json", "--count", "2", "--url", env.URL, "--token", env.Token) }()
	waitSubscribers(t, env, 1)
	d := testkit.Dial(t, env.URL, "W")
	d.Close()
	var r result
	select {
	case r = <-done:
	case <-time.After(2 * testkit.Wait):
		t.Fatal("watch --count 2 did not exit")
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 2 {
		t.Fatalf("watch: %+v", r)
	}
	for i, kind := range []adminapi.Kind{adminapi.KindDeviceConnected, adminapi.KindDeviceDisconnected} {
		var d adminapi.Delta
		if err := json.Unmarshal([]byte(lines[i]), &d); err != nil || d.Kind != kind || d.ID != "W" || d.Seq == 0 {
			t.Fatalf("line %d = %s (%v), want %s of W", i, lines[i], err, kind)
		}
	}
}

// waitSubscribers waits until the hub has n stream subscribers.
func waitSubscribers(t *testing.T, env *admintest.Env, n int) {
	t.Helper()
	deadline := time.Now().Add(testkit.Wait)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for env.Hub.Snapshot().Stats.Subscribers != n {
		if time.Now().After(deadline) {
			t.Fatalf("no %d admin subscribers", n)
		}
		<-tick.C
	}
}

func TestWatchPrinting(t *testing.T) {
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	dev := adminapi.Device{ID: "A", Address: "127.0.0.1:5", Transport: "websocket", Generation: "gen2", EngineIO: 4}
	updates := make(chan adminapi.Update, 10)
	updates <- adminapi.Update{Status: adminapi.StatusConnecting}
	updates <- adminapi.Update{Status: adminapi.StatusLive, Snapshot: &adminapi.Snapshot{Seq: 4, Time: at}}
	updates <- adminapi.Update{Status: adminapi.StatusLive, Deltas: []adminapi.Delta{
		{Seq: 5, Kind: adminapi.KindDeviceConnected, Time: at, ID: "A", Device: &dev},
		{Seq: 6, Kind: adminapi.KindStats, Time: at, Stats: &adminapi.Stats{}},
	}}
	updates <- adminapi.Update{Status: adminapi.StatusDown, Err: errors.New("relay unreachable: connection lost")}
	updates <- adminapi.Update{Status: adminapi.StatusLive, Snapshot: &adminapi.Snapshot{Seq: 9, Time: at, Devices: []adminapi.Device{dev}}}
	updates <- adminapi.Update{Status: adminapi.StatusLive, Deltas: []adminapi.Delta{{Seq: 10, Kind: adminapi.KindPairRefused, Time: at, ID: "A", Peer: "Z", Code: "OFFLINE"}}}
	close(updates)
	var out, errOut bytes.Buffer
	if err := (watcher{out: &out, errOut: &errOut}).run(updates); err != nil {
		t.Fatal(err)
	}
	want := "2025-06-01T12:00:00Z #5 device_connected A connected from 127.0.0.1:5 (websocket, gen2, EIO 4)\n" +
		"2025-06-01T12:00:00Z #9 resync 1 devices, 0 pairs (events may have been missed)\n" +
		"2025-06-01T12:00:00Z #10 pair_refused A could not pair with Z: OFFLINE\n"
	if out.String() != want {
		t.Fatalf("watch printed\n%s\nwant\n%s", out.String(), want)
	}
	if !strings.Contains(errOut.String(), "reconnecting") {
		t.Fatalf("drop not reported: %q", errOut.String())
	}

	// Before the first snapshot, a refused token ends the watch.
	updates = make(chan adminapi.Update, 2)
	updates <- adminapi.Update{Status: adminapi.StatusUnauthorized, Err: protocol.Errorf(protocol.CodeUnauthorized, "wrong admin token")}
	close(updates)
	if err := (watcher{out: &out, errOut: &errOut, asJSON: true}).run(updates); protocol.CodeOf(err) != protocol.CodeUnauthorized {
		t.Fatalf("watch with a refused token: %v", err)
	}
}

// TestWatchReportsDropsOnStderr: the relay going away mid-watch is said on
// run's stderr, not on the process's.
func TestWatchReportsDropsOnStderr(t *testing.T) {
	env := admintest.Start(t, admin.Config{StatsInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut testkit.SyncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"watch", "--url", env.URL, "--token", env.Token}, &out, &errOut) }()
	waitSubscribers(t, env, 1)
	sctx, scancel := context.WithTimeout(context.Background(), testkit.Wait)
	defer scancel()
	if err := env.Relay.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(testkit.Wait)
	for !strings.Contains(errOut.String(), "reconnecting") {
		if time.Now().After(deadline) {
			t.Fatalf("the drop was not reported on stderr: %q", errOut.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("watch exited %d after the interrupt", code)
	}
}

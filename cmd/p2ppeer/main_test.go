package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/p2prelay/p2prelay/internal/testkit"
	"github.com/p2prelay/p2prelay/peer"
	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server"
	"github.com/p2prelay/p2prelay/server/socketio"
)

// runCLI runs p2ppeer in-process with stdin, until it returns.
func runCLI(ctx context.Context, stdin string, args ...string) (stdout, stderr string, code int) {
	var out, errb testkit.SyncBuffer
	env := &Env{Ctx: ctx, Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb}
	code = run(env, args)
	return out.String(), errb.String(), code
}

// jsonLines decodes --json output.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var objs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON line: %q: %v", line, err)
		}
		if _, ok := m["type"].(string); !ok {
			t.Fatalf("line without a type: %q", line)
		}
		objs = append(objs, m)
	}
	return objs
}

func types(objs []map[string]any) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o["type"].(string)
	}
	return out
}

// waitDevice waits until the relay has device id.
func waitDevice(t *testing.T, r *testkit.Relay, id string) {
	t.Helper()
	deadline := time.After(testkit.Wait)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !slices.Contains(r.Relay.DeviceIDs(), id) {
		select {
		case <-deadline:
			t.Fatalf("device %s never connected", id)
		case <-tick.C:
		}
	}
}

func TestListenAndEmit(t *testing.T) {
	r := testkit.StartRelay(t, socketio.ServiceConfig{Relay: server.Config{PairRate: server.Unlimited}})
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		out, errs string
		code      int
	}
	done := make(chan result, 1)
	go func() {
		out, errs, code := runCLI(ctx, "", "--url", r.URL, "--id", "B", "--json", "listen", "--reply", `{"ok":true}`)
		done <- result{out, errs, code}
	}()
	waitDevice(t, r, "B")

	out, errs, code := runCLI(context.Background(), "", "--url", r.URL, "--id", "A", "emit", "--target", "B", "q", "1", `"two words"`, "--ack")
	if code != 0 || strings.TrimSpace(out) != `{"ok":true}` {
		t.Fatalf("emit --ack: code %d, out %q, err %q", code, out, errs)
	}
	out, _, code = runCLI(context.Background(), "", "--url", r.URL, "--id", "A", "emit", "--target", "B", "hello", `{"x":1}`)
	if code != 0 || out != "" {
		t.Fatalf("emit: code %d, out %q", code, out)
	}
	for _, tc := range []struct {
		target string
		code   int
	}{{"nobody", exitPairing}, {"A", exitPairing}} {
		_, errs, code := runCLI(context.Background(), "", "--url", r.URL, "--id", "A", "emit", "--target", tc.target, "x")
		if code != tc.code || !strings.Contains(errs, "pairing with "+tc.target+" failed") {
			t.Fatalf("emit to %s: code %d, stderr %q", tc.target, code, errs)
		}
	}

	cancel()
	res := <-done
	if res.code != 0 {
		t.Fatalf("listen: code %d, stderr %q", res.code, res.errs)
	}
	objs := jsonLines(t, res.out)
	var events []map[string]any
	for _, o := range objs {
		if o["type"] == "event" {
			events = append(events, o)
		}
	}
	if len(events) != 2 {
		t.Fatalf("listen printed %v", types(objs))
	}
	q := events[0]
	if q["event"] != "q" || q["from"] != "A" || fmt.Sprint(q["args"]) != "[1 two words]" || fmt.Sprint(q["reply"]) != "[map[ok:true]]" {
		t.Fatalf("listen event %v", q)
	}
	if h := events[1]; h["event"] != "hello" || fmt.Sprint(h["args"]) != "[map[x:1]]" || h["reply"] != nil {
		t.Fatalf("listen event %v", h)
	}
	if objs[0]["type"] != "connected" || objs[0]["id"] != "B" {
		t.Fatalf("first line %v", objs[0])
	}
}

func TestConnectScript(t *testing.T) {
	r := testkit.StartRelay(t, socketio.ServiceConfig{Relay: server.Config{PairRate: server.Unlimited}})
	b, err := peer.Dial(context.Background(), peer.Config{URL: r.URL, ID: "B", OnEvent: func(ev peer.Event) {
		if ev.WantsAck() {
			_ = ev.Ack("answer to " + ev.Name)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })

	script := strings.Join([]string{
		`# a comment`,
		`emit hello {"x": 1} "two words"`,
		`ack q 1`,
		`devices`,
		`unpair`,
		`emit late`,
		`pair B`,
		`ack q 2`,
	}, "\n") + "\n"
	out, errs, code := runCLI(context.Background(), script, "--url", r.URL, "--id", "A", "--json", "connect", "--target", "B")
	if code != exitFailure {
		t.Fatalf("code %d (want 1: emit late failed), stderr %q", code, errs)
	}
	if !strings.Contains(errs, "NOT_PAIRED") || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Fatalf("stderr %q, want one NOT_PAIRED line", errs)
	}
	objs := jsonLines(t, out)
	got := types(objs)
	// Acks are answered while the next commands run: their place varies,
	// but the session waits for them before it unpairs and leaves.
	for _, want := range []string{"connected", "paired", "sent", "devices", "unpaired", "error", "paired", "ack", "unpaired"} {
		i := slices.Index(got, want)
		if i < 0 {
			t.Fatalf("no %s in %v", want, got)
		}
		got = got[i+1:]
	}
	var acks []string
	for _, o := range objs {
		if o["type"] == "ack" {
			acks = append(acks, fmt.Sprint(o["args"]))
		}
		if o["type"] == "error" && o["code"] != "NOT_PAIRED" {
			t.Fatalf("error %v", o)
		}
	}
	if len(acks) != 2 || acks[0] != "[answer to q]" {
		t.Fatalf("acks %v", acks)
	}
}

func TestUsage(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"connect"}, exitUsage},
		{[]string{"--id", "A", "listen", "--accept", "a,,b"}, exitUsage},
		{[]string{"--id", "A", "emit", "x"}, exitUsage},
		{[]string{"--id", "A", "emit", "--target", "bad\nid", "x"}, exitUsage},
		{[]string{"--id", "A", "emit", "--target", "B", "x", `{"x": [1`}, exitUsage},
		{[]string{"--id", "A", "listen", "--reply", `"open`}, exitUsage},
		{[]string{"--id", "A", "--timeout", "-1s", "devices"}, exitUsage},
		{[]string{"--bogus"}, exitUsage},
		{[]string{"frobnicate"}, exitUsage},
		{[]string{"--help"}, exitOK},
		{[]string{"emit", "--help"}, exitOK},
	} {
		_, errs, code := runCLI(ctx, "", tc.args...)
		if code != tc.code {
			t.Errorf("%q: code %d, want %d (stderr %q)", tc.args, code, tc.code, errs)
		}
	}
}

func TestExitCode(t *testing.T) {
	busy := protocol.Errorf(protocol.CodeBusy, "busy")
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, exitOK},
		{usageError{errors.New("x")}, exitUsage},
		{pairError{"B", busy}, exitPairing},
		{pairError{"B", fmt.Errorf("w: %w", peer.ErrOffline)}, exitPairing},
		{pairError{"B", protocol.Errorf(protocol.CodeTimeout, "late")}, exitTimeout},
		{pairError{"B", context.DeadlineExceeded}, exitTimeout},
		{pairError{"B", errors.New("socket gone")}, exitFailure},
		{fmt.Errorf("x: %w", peer.ErrConnect), exitConnect},
		{protocol.Errorf(protocol.CodeUnauthorized, "no"), exitConnect},
		{protocol.Errorf(protocol.CodeTimeout, "no answer"), exitTimeout},
		{protocol.Errorf(protocol.CodeNotPaired, "no"), exitFailure},
		{reportedError{usageError{errors.New("x")}}, exitUsage},
		{closedError{protocol.Errorf(protocol.CodeKicked, "by an operator")}, exitClosed},
		{closedError{protocol.Errorf(protocol.CodeTakenOver, "new connection")}, exitClosed},
		{closedError{protocol.Errorf(protocol.CodeUnauthorized, "expired")}, exitConnect},
		{interrupted{syscall.SIGINT}, 130},
		{interrupted{syscall.SIGTERM}, 143},
		{requestError{"ack", "x", protocol.Errorf(protocol.CodeTimeout, "late")}, exitTimeout},
		{errors.New("other"), exitFailure},
	} {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestJSONObjectsKeepTheirOrder(t *testing.T) {
	b, err := json.Marshal(newObj("event", "event", "e", "args", []any{1}, "from", "B").with("reply", nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"type":"event","event":"e","args":[1],"from":"B","reply":null}`; string(b) != want {
		t.Fatalf("got %s, want %s", b, want)
	}
}

// TestKickedAndInterrupted: a device an operator kicks says so on one line
// and exits 6; one interrupted while it waits for a target exits 130 and
// says nothing.
func TestKickedAndInterrupted(t *testing.T) {
	r := testkit.StartRelay(t, socketio.ServiceConfig{Relay: server.Config{PairRate: server.Unlimited}})
	type result struct {
		out, errs string
		code      int
	}
	done := make(chan result, 1)
	go func() {
		out, errs, code := runCLI(context.Background(), "", "--url", r.URL, "--id", "K", "--json", "listen")
		done <- result{out, errs, code}
	}()
	waitDevice(t, r, "K")
	if err := r.Relay.Kick("K"); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.code != exitClosed || res.errs != "p2ppeer: kicked by an operator (KICKED: disconnected by an operator)\n" {
		t.Fatalf("kicked: code %d, stderr %q", res.code, res.errs)
	}
	if got := types(jsonLines(t, res.out)); !slices.Equal(got, []string{"connected", "error"}) {
		t.Fatalf("kicked printed %v", got)
	}

	ctx, cancel := context.WithCancelCause(context.Background())
	go func() {
		out, errs, code := runCLI(ctx, "", "--url", r.URL, "--id", "W", "emit", "--wait", "--target", "NOBODY", "x")
		done <- result{out, errs, code}
	}()
	waitDevice(t, r, "W")
	cancel(interrupted{syscall.SIGINT})
	if res := <-done; res.code != 130 || res.errs != "" || res.out != "" {
		t.Fatalf("interrupted: code %d, stdout %q, stderr %q", res.code, res.out, res.errs)
	}
}

// TestStreamCommand: stdin on one side comes out on the other's stdout,
// both ways; stdout carries nothing else.
func TestStreamCommand(t *testing.T) {
	r := testkit.StartRelay(t, socketio.ServiceConfig{})
	ab := strings.Repeat("from A to B ", 100_000)
	ba := strings.Repeat("back ", 1000)
	type result struct {
		out, errs string
		code      int
	}
	done := make(chan result, 1)
	go func() {
		out, errs, code := runCLI(context.Background(), ba, "--url", r.URL, "--id", "B", "stream")
		done <- result{out, errs, code}
	}()
	waitDevice(t, r, "B")
	out, errs, code := runCLI(context.Background(), ab, "--url", r.URL, "--id", "A", "stream", "--target", "B", "--chunk", "65536")
	if code != 0 || out != ba {
		t.Fatalf("A: code %d, %d bytes out (want %d), stderr %q", code, len(out), len(ba), errs)
	}
	if !strings.HasPrefix(errs, "done      sent 1.1 MiB") {
		t.Fatalf("A's summary: %q", errs)
	}
	res := <-done
	if res.code != 0 || res.out != ab {
		t.Fatalf("B: code %d, %d bytes out (want %d), stderr %q", res.code, len(res.out), len(ab), res.errs)
	}
}

// Package compat_test runs the wire-compatibility suite: real JavaScript
// devices on socket.io-client 2.x and 4.x (the node tests under test/)
// against relays started in-process, one relay per configuration.
package compat_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2prelay/p2prelay/auth"
	"github.com/p2prelay/p2prelay/internal/testkit"
	"github.com/p2prelay/p2prelay/server"
	"github.com/p2prelay/p2prelay/server/socketio"
)

// Settings of the relays whose behaviour the tests observe; they reach the
// node tests through the environment.
const (
	pairTimeout    = 2 * time.Second
	ackTimeout     = 2 * time.Second
	resumeWindow   = 3 * time.Second
	reclaimCheck   = time.Second
	maxMessage     = 64 << 10 // Engine.IO message limit
	maxPayload     = 16 << 10 // relay payload limit
	rate           = 50
	burst          = 100
	pairBurst      = 3
	maxPendingAcks = 4
	maxDevices     = 4
	deviceSecret   = "compat-device-secret-0123456789"
	nodeTimeout    = 4 * time.Minute // one node run, all its files
	testTimeout    = 2 * time.Minute // one node test, or one file
	installTiming  = 5 * time.Minute // npm ci
)

// suite is one relay configuration and the node test files run against it.
type suite struct {
	name    string
	files   []string
	cfg     socketio.ServiceConfig
	env     []string
	control bool // mount the operator endpoints under /compat/
	tokens  bool // devices prove their ids with tokens signed with deviceSecret
}

func suites() []suite {
	return []suite{
		{
			name:  "default",
			files: []string{"connect", "matrix", "pairing", "relay", "listing", "badinput", "hostile", "unregister", "streams", "eio3"},
		},
		{
			name:  "timeouts",
			files: []string{"timeouts", "slowpeers"},
			cfg:   socketio.ServiceConfig{Relay: server.Config{PairTimeout: pairTimeout, AckTimeout: ackTimeout}},
			env: []string{
				"P2P_PAIR_TIMEOUT_MS=" + strconv.FormatInt(pairTimeout.Milliseconds(), 10),
				"P2P_ACK_TIMEOUT_MS=" + strconv.FormatInt(ackTimeout.Milliseconds(), 10),
			},
		},
		{
			name:  "limits",
			files: []string{"limits"},
			cfg: socketio.ServiceConfig{
				MaxHTTPBufferSize: maxMessage,
				Relay: server.Config{
					MaxPayload: maxPayload, Rate: rate, Burst: burst,
					PairRate: 1, PairBurst: pairBurst, MaxPendingAcks: maxPendingAcks,
				},
			},
			env: []string{
				"P2P_MAX_MESSAGE_BYTES=" + strconv.Itoa(maxMessage),
				"P2P_MAX_PAYLOAD_BYTES=" + strconv.Itoa(maxPayload),
				"P2P_BURST=" + strconv.Itoa(burst),
				"P2P_PAIR_BURST=" + strconv.Itoa(pairBurst),
				"P2P_MAX_PENDING_ACKS=" + strconv.Itoa(maxPendingAcks),
			},
		},
		{
			name:  "full",
			files: []string{"full"},
			cfg:   socketio.ServiceConfig{Relay: server.Config{MaxDevices: maxDevices}},
			env:   []string{"P2P_MAX_DEVICES=" + strconv.Itoa(maxDevices)},
		},
		{
			name:   "tokens",
			files:  []string{"tokens"},
			tokens: true,
			env:    []string{"P2P_DEVICE_SECRET=" + deviceSecret},
		},
		{
			name:    "operator",
			files:   []string{"operator"},
			cfg:     socketio.ServiceConfig{Relay: server.Config{DuplicateID: server.DuplicateTakeover}},
			control: true,
		},
		{
			name:    "resume",
			files:   []string{"resume"},
			cfg:     socketio.ServiceConfig{Relay: server.Config{ResumeWindow: resumeWindow}},
			env:     []string{"P2P_RESUME_WINDOW_MS=" + strconv.FormatInt(resumeWindow.Milliseconds(), 10)},
			control: true,
		},
		{
			name:  "reclaim",
			files: []string{"reclaim"},
			cfg:   socketio.ServiceConfig{Relay: server.Config{ReclaimCheck: reclaimCheck}},
			env:   []string{"P2P_RECLAIM_CHECK_MS=" + strconv.FormatInt(reclaimCheck.Milliseconds(), 10)},
		},
		{
			name:    "shutdown",
			files:   []string{"shutdown"},
			control: true,
		},
	}
}

// TestJavaScriptClients runs every node test file against the relay its
// suite configures. It needs node and npm; it installs compat/node_modules
// with `npm ci` when they are missing.
func TestJavaScriptClients(t *testing.T) {
	node := requireNode(t)
	checkEveryFileRuns(t)
	for _, s := range suites() {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			if s.tokens {
				v, err := auth.NewVerifier(deviceSecret)
				if err != nil {
					t.Fatal(err)
				}
				s.cfg.Relay.Tokens = v
			}
			r := testkit.StartRelay(t, s.cfg)
			env := append([]string{"P2P_URL=" + r.URL}, s.env...)
			if s.control {
				mountControl(t, r)
				env = append(env, "P2P_CONTROL_URL="+r.URL+"/compat")
			}
			runNode(t, node, env, s.files)
		})
	}
}

var installOnce sync.Once

// requireNode returns the node binary, installing the npm packages first
// when they are missing. It fails the test when node or npm is missing:
// the suite never skips.
func requireNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is required for the compatibility tests (Node.js 18 or later): install it, or run `make deps`")
	}
	var installErr error
	installOnce.Do(func() { installErr = installModules() })
	if installErr != nil {
		t.Fatal(installErr)
	}
	return node
}

func installModules() error {
	missing := false
	for _, pkg := range []string{"sio2", "sio4"} {
		if _, err := os.Stat(filepath.Join("node_modules", pkg, "package.json")); err != nil {
			missing = true
		}
	}
	if !missing {
		return nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return errors.New("compat/node_modules is missing and npm is not installed: install npm, or run `make deps`")
	}
	ctx, cancel := context.WithTimeout(context.Background(), installTiming)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.WaitDelay = 5 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("npm ci in compat: %w\n%s", err, out)
	}
	return nil
}

// checkEveryFileRuns fails when a test file under test/ belongs to no
// suite, so that no file is left out unnoticed.
func checkEveryFileRuns(t *testing.T) {
	t.Helper()
	found, err := filepath.Glob(filepath.Join("test", "*.test.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, s := range suites() {
		for _, f := range s.files {
			listed = append(listed, filepath.Join("test", f+".test.mjs"))
		}
	}
	for _, f := range found {
		if !slices.Contains(listed, f) {
			t.Errorf("%s is in no suite: add it to suites() in compat_test.go", f)
		}
	}
	for _, f := range listed {
		if !slices.Contains(found, f) {
			t.Errorf("suite file %s does not exist", f)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// runNode runs `node --test` on files with env added, and fails the test
// with node's report unless every test ran and passed.
func runNode(t *testing.T, node string, env, files []string) {
	t.Helper()
	args := []string{
		"--test", "--test-force-exit", "--test-reporter=spec",
		"--test-timeout=" + strconv.FormatInt(testTimeout.Milliseconds(), 10),
		"--test-concurrency=" + strconv.Itoa(len(files)),
	}
	for _, f := range files {
		args = append(args, filepath.Join("test", f+".test.mjs"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Env = append(append(os.Environ(), "NO_COLOR=1", "FORCE_COLOR=0"), env...)
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start).Round(time.Millisecond)
	name := strings.Join(files, " ")
	if ctx.Err() != nil {
		t.Fatalf("node --test %s did not finish within %s:\n%s", name, nodeTimeout, out)
	}
	if err != nil {
		t.Fatalf("node --test %s failed (%v, %s):\n%s", name, err, took, out)
	}
	sum, err := readSummary(out)
	if err != nil {
		t.Fatalf("node --test %s: %v\n%s", name, err, out)
	}
	if bad := sum.problems(); bad != "" {
		t.Fatalf("node --test %s: %s\n%s", name, bad, out)
	}
	t.Logf("node --test %s: %d tests passed in %s", name, sum["pass"], took)
	if testing.Verbose() {
		t.Logf("%s", out)
	}
}

// summary is the counts at the end of a spec report ("ℹ pass 12").
type summary map[string]int

func readSummary(out []byte) (summary, error) {
	sum := summary{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 || fields[0] != "ℹ" {
			continue
		}
		if n, err := strconv.Atoi(fields[2]); err == nil {
			sum[fields[1]] = n
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if _, ok := sum["tests"]; !ok {
		return nil, errors.New("the report has no summary")
	}
	return sum, nil
}

// problems says what is wrong with a run: failures, or tests that did not
// run (skipped, todo, cancelled), or no tests at all.
func (s summary) problems() string {
	var bad []string
	for _, k := range []string{"fail", "cancelled", "skipped", "todo"} {
		if s[k] > 0 {
			bad = append(bad, fmt.Sprintf("%d %s", s[k], k))
		}
	}
	if s["pass"] == 0 {
		bad = append(bad, "no test passed")
	}
	if s["pass"] != s["tests"] {
		bad = append(bad, fmt.Sprintf("%d of %d tests passed", s["pass"], s["tests"]))
	}
	return strings.Join(bad, ", ")
}

// mountControl adds the operator actions the node tests trigger to the
// relay's HTTP mux: POST /compat/unpair?id=, /compat/kick?id= and
// /compat/shutdown. They answer JSON: {"ok": true} or {"ok": false,
// "error"}. The relay is already serving; adding handlers to its
// http.ServeMux then is safe, and no node test runs before they are in.
func mountControl(t *testing.T, r *testkit.Relay) {
	t.Helper()
	reply := func(w http.ResponseWriter, err error) {
		w.Header().Set("Content-Type", "application/json")
		body := map[string]any{"ok": true}
		if err != nil {
			w.WriteHeader(http.StatusConflict)
			body = map[string]any{"ok": false, "error": err.Error()}
		}
		_ = json.NewEncoder(w).Encode(body)
	}
	r.Handle("POST /compat/unpair", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, err := r.Relay.Unpair(req.URL.Query().Get("id"))
		reply(w, err)
	}))
	r.Handle("POST /compat/kick", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		reply(w, r.Relay.Kick(req.URL.Query().Get("id")))
	}))
	r.Handle("GET /compat/device", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		d, ok := r.Relay.Store().Get(req.URL.Query().Get("id"))
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": ok, "away": d.Away, "peer": d.Peer})
	}))
	r.Handle("POST /compat/shutdown", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		reply(w, nil)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), testkit.Wait)
			defer cancel()
			_ = r.Shutdown(ctx)
		}()
	}))
}

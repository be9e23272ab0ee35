package compat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/p2prelay/p2prelay/cluster"
	"github.com/p2prelay/p2prelay/internal/redistest"
)

// TestCluster runs compat/cluster/cluster.test.mjs against three p2pd
// nodes (the built binary) sharing a redis-server, and an HAProxy in front
// of them with deploy/haproxy.cfg's balancing, all on free loopback ports.
// The test file drives the processes through a control endpoint: kill -9
// or SIGTERM a node, start it again, stop and start Redis.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("the cluster test starts processes; -short skips it")
	}
	node := requireNode(t)
	haproxy := lookPath(t, "haproxy", "/usr/sbin/haproxy")
	rs := redistest.Start(t)
	c := &clusterRig{t: t, bin: buildP2PD(t), redis: rs}
	for i := range 3 {
		c.nodes = append(c.nodes, &p2pdNode{id: fmt.Sprintf("n%d", i+1), port: freePort(t)})
	}
	for _, n := range c.nodes {
		c.start(n)
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			c.kill(n)
		}
		if t.Failed() {
			c.dumpLogs()
		}
	})
	lb := startHAProxy(t, haproxy, c.nodes)
	ctl := c.serveControl()
	var urls []string
	for _, n := range c.nodes {
		urls = append(urls, n.url())
	}
	env := []string{"P2P_URL=" + urls[0], "P2P_NODES=" + strings.Join(urls, ","), "P2P_LB=" + lb, "P2P_CLUSTER_CONTROL=" + ctl}
	runNodeFiles(t, node, env, []string{filepath.Join("cluster", "cluster.test.mjs")}, 1)
}

// clusterRig is the processes of the cluster test.
type clusterRig struct {
	t     *testing.T
	bin   string
	mu    sync.Mutex // guards redis, nodes' processes
	redis *redistest.Server
	nodes []*p2pdNode
}

type p2pdNode struct {
	id   string
	port int
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

func (n *p2pdNode) url() string { return "http://127.0.0.1:" + strconv.Itoa(n.port) }

func lookPath(t *testing.T, name, fallback string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if _, err := os.Stat(fallback); err == nil {
		return fallback
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is required in CI: run `make deps`", name)
	}
	t.Skipf("%s is not installed: run `make deps`", name)
	return ""
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func buildP2PD(t *testing.T) string {
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir, "github.com/p2prelay/p2prelay/cmd/p2pd")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build p2pd: %v\n%s", err, out)
	}
	return filepath.Join(dir, "p2pd")
}

// start runs node n and waits until it serves.
func (c *clusterRig) start(n *p2pdNode) {
	c.mu.Lock()
	addr := c.redis.Addr
	c.mu.Unlock()
	if n.log == "" {
		n.log = filepath.Join(c.t.TempDir(), n.id+".log")
	}
	logf, err := os.OpenFile(n.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	n.cmd = exec.Command(c.bin, "--listen", "127.0.0.1:"+strconv.Itoa(n.port), "--redis", "redis://"+addr,
		"--node-id", n.id, "--lease", "1s", "--resume-window", "3s", "--reclaim-check", "1s", "--admin-token", "p2pa_compat-cluster-"+n.id,
		"--log-level", "debug")
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	if err := n.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	n.done = make(chan struct{})
	go func() { _ = n.cmd.Wait(); _ = logf.Close(); close(n.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := http.Get(n.url() + "/healthz")
		if err == nil {
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(n.log)
			c.t.Fatalf("node %s did not serve within 10s:\n%s", n.id, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dumpLogs writes the end of every node's log into
// the test's output (every start of it appends to one file), for a failure to be read from CI alone.
func (c *clusterRig) dumpLogs() {
	const tail = 400
	for _, n := range c.nodes {
		b, err := os.ReadFile(n.log)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > tail {
			lines = lines[len(lines)-tail:]
		}
		c.t.Logf("node %s, last %d lines of its log:\n%s", n.id, len(lines), strings.Join(lines, "\n"))
	}
}

// kill ends node n at once (SIGKILL), if it runs.
func (c *clusterRig) kill(n *p2pdNode) {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
}

// term stops node n gracefully and waits until it has exited.
func (c *clusterRig) term(n *p2pdNode) error {
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
		return nil
	case <-time.After(20 * time.Second):
		return fmt.Errorf("node %s did not stop within 20s", n.id)
	}
}

// serveControl serves the endpoints the test file drives the processes
// with, and returns its base URL.
func (c *clusterRig) serveControl() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	nodeOf := func(r *http.Request) (*p2pdNode, error) {
		i, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || i < 1 || i > len(c.nodes) {
			return nil, fmt.Errorf("no node %q", r.URL.Query().Get("n"))
		}
		return c.nodes[i-1], nil
	}
	reply := func(w http.ResponseWriter, body map[string]any, err error) {
		if body == nil {
			body = map[string]any{}
		}
		body["ok"] = err == nil
		if err != nil {
			body["error"] = err.Error()
		}
		_ = json.NewEncoder(w).Encode(body)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /node/kill", func(w http.ResponseWriter, r *http.Request) {
		n, err := nodeOf(r)
		if err == nil {
			c.kill(n)
		}
		reply(w, nil, err)
	})
	mux.HandleFunc("POST /node/term", func(w http.ResponseWriter, r *http.Request) {
		n, err := nodeOf(r)
		if err == nil {
			err = c.term(n)
		}
		reply(w, nil, err)
	})
	mux.HandleFunc("POST /node/start", func(w http.ResponseWriter, r *http.Request) {
		n, err := nodeOf(r)
		if err == nil {
			select {
			case <-n.done:
				c.start(n)
			default: // running
			}
		}
		reply(w, nil, err)
	})
	mux.HandleFunc("POST /redis/stop", func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		defer c.mu.Unlock()
		reply(w, nil, c.redis.Stop())
	})
	mux.HandleFunc("POST /redis/start", func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if err := c.redis.Ping(); err == nil {
			reply(w, nil, nil)
			return
		}
		s, err := c.redis.StartAgain(c.t)
		if err == nil {
			c.redis = s
		}
		reply(w, nil, err)
	})
	mux.HandleFunc("POST /devices", func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		addr := c.redis.Addr
		c.mu.Unlock()
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		defer rdb.Close()
		nodes := map[string]string{}
		for _, d := range cluster.NewStore(rdb, cluster.StoreOptions{}).Devices() {
			nodes[d.ID] = d.Node
		}
		reply(w, map[string]any{"nodes": nodes}, nil)
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	c.t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return "http://" + ln.Addr().String()
}

// startHAProxy runs HAProxy with deploy/haproxy.cfg's balancing in front of
// nodes, and returns its URL.
func startHAProxy(t *testing.T, bin string, nodes []*p2pdNode) string {
	tmpl, err := os.ReadFile(filepath.Join("..", "deploy", "haproxy.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	var cfg strings.Builder
	for _, line := range strings.Split(string(tmpl), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "bind "):
			line = "    bind 127.0.0.1:" + strconv.Itoa(port)
		case strings.HasPrefix(trimmed, "server "):
			continue
		case strings.HasPrefix(trimmed, "maxconn"):
			line = "    maxconn 4096"
		}
		cfg.WriteString(line + "\n")
	}
	for _, n := range nodes {
		fmt.Fprintf(&cfg, "    server %s 127.0.0.1:%d check\n", n.id, n.port)
	}
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-db", "-f", path)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := http.Get(url + "/healthz")
		if err == nil {
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return url
			}
		}
		select {
		case <-done:
			t.Fatalf("haproxy exited:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy not serving within 10s:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Package redistest starts throwaway redis-server processes for tests.
package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Wait bounds how long a server may take to start or stop.
const Wait = 10 * time.Second

// Server is a redis-server process listening on 127.0.0.1, without
// persistence, in a temporary directory.
type Server struct {
	Addr string // 127.0.0.1:PORT

	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited
	stop   sync.Once

	mu  sync.Mutex // guards log
	log strings.Builder
}

// Start starts a redis-server on a free port of 127.0.0.1 and stops it when
// the test ends. When redis-server is not installed it skips the test,
// unless the environment variable CI is set: then it fails it, so that CI
// never passes without the tests that need Redis.
func Start(tb testing.TB) *Server {
	tb.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		const install = "install it (Debian: apt-get install redis-server), or run `make deps`"
		if os.Getenv("CI") != "" {
			tb.Fatalf("redis-server is required in CI (CI is set): %s", install)
		}
		tb.Skipf("redis-server is not installed: %s; set CI to make this a failure", install)
	}
	dir := tb.TempDir()
	// A free port found by listening on :0 may be taken again before
	// redis-server binds it: try another then.
	for range 5 {
		s, err := start(path, dir, freePort(tb))
		if errors.Is(err, errPortTaken) {
			continue
		}
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() {
			if err := s.Stop(); err != nil {
				tb.Error(err)
			}
		})
		return s
	}
	tb.Fatal("redis-server: no free port after 5 tries")
	return nil
}

// Client returns a client of s, closed when the test ends.
func (s *Server) Client(tb testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// Pause freezes the server (SIGSTOP): connections open, but nothing is
// answered, as when Redis hangs or the network drops packets.
func (s *Server) Pause() error { return s.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume lets a paused server go on (SIGCONT).
func (s *Server) Resume() error { return s.cmd.Process.Signal(syscall.SIGCONT) }

// Stop stops the server, paused or not, and waits until it has exited.
// Later calls do nothing.
func (s *Server) Stop() error {
	var err error
	s.stop.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		_ = s.Resume()
		select {
		case <-s.exited:
		case <-time.After(Wait):
			_ = s.cmd.Process.Kill()
			<-s.exited
			err = fmt.Errorf("redis-server on %s did not stop within %s; killed\n%s", s.Addr, Wait, s.Log())
		}
	})
	return err
}

// Ping reports whether the server answers.
func (s *Server) Ping() error {
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr, DialTimeout: time.Second, ReadTimeout: time.Second})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return rdb.Ping(ctx).Err()
}

// StartAgain starts, on the same address, a server that Stop stopped, and
// returns it (empty: nothing was saved). It is stopped when the test ends.
func (s *Server) StartAgain(tb testing.TB) (*Server, error) {
	tb.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, err
	}
	_, portText, _ := net.SplitHostPort(s.Addr)
	port, _ := strconv.Atoi(portText)
	n, err := start(path, tb.TempDir(), port)
	if err != nil {
		return nil, err
	}
	tb.Cleanup(func() { _ = n.Stop() })
	return n, nil
}

// Log returns what the server has logged so far.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

var errPortTaken = errors.New("port taken")

func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	return port
}

// start runs redis-server on port and waits until it accepts connections.
func start(path, dir string, port int) (*Server, error) {
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), exited: make(chan struct{})}
	s.cmd = exec.Command(path,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir,
		"--logfile", "", "--daemonize", "no")
	// Through an io.Pipe, Wait returns only once all output is copied, so
	// the log is whole when exited closes.
	pr, pw := io.Pipe()
	s.cmd.Stdout, s.cmd.Stderr = pw, pw
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	ready := make(chan struct{})
	logged := make(chan struct{})
	go func() {
		s.readLog(pr, ready)
		close(logged)
	}()
	go func() {
		_ = s.cmd.Wait()
		_ = pw.Close()
		<-logged
		close(s.exited)
	}()
	select {
	case <-ready:
		return s, nil
	case <-s.exited:
		if strings.Contains(s.Log(), "Address already in use") {
			return nil, errPortTaken
		}
		return nil, fmt.Errorf("redis-server exited before it was ready:\n%s", s.Log())
	case <-time.After(Wait):
		_ = s.Stop()
		return nil, fmt.Errorf("redis-server not ready within %s:\n%s", Wait, s.Log())
	}
}

// readLog keeps the server's log, and closes ready when the server says it
// accepts connections.
func (s *Server) readLog(out io.Reader, ready chan struct{}) {
	sc := bufio.NewScanner(out)
	signalled := false
	for sc.Scan() {
		s.mu.Lock()
		s.log.WriteString(sc.Text() + "\n")
		s.mu.Unlock()
		if !signalled && strings.Contains(sc.Text(), "Ready to accept connections") {
			signalled = true
			close(ready)
		}
	}
}

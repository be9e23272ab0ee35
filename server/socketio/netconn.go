package socketio

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// detachOnHijack serves h, and for websocket upgrades hands it a
// ResponseWriter that forgets net/http's connection once hijacked. The
// socket.io library keeps the request's ResponseWriter for the life of the
// connection, and through it net/http's per-connection state, read and
// write buffers included: about 9 KiB per device that nobody uses again.
func detachOnHijack(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			h.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(&detachingWriter{w: w}, r)
	})
}

// detachingWriter is a ResponseWriter that drops the one it wraps after a
// successful Hijack; afterwards writes fail with http.ErrHijacked, as
// net/http's own do, and Header returns a map of its own.
type detachingWriter struct {
	mu     sync.Mutex // guards w, header
	w      http.ResponseWriter
	header http.Header
}

func (d *detachingWriter) inner() http.ResponseWriter {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.w
}

func (d *detachingWriter) Header() http.Header {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.w != nil {
		return d.w.Header()
	}
	if d.header == nil {
		d.header = make(http.Header)
	}
	return d.header
}

func (d *detachingWriter) Write(b []byte) (int, error) {
	if w := d.inner(); w != nil {
		return w.Write(b)
	}
	return 0, http.ErrHijacked
}

func (d *detachingWriter) WriteHeader(code int) {
	if w := d.inner(); w != nil {
		w.WriteHeader(code)
	}
}

func (d *detachingWriter) Flush() {
	if f, ok := d.inner().(http.Flusher); ok {
		f.Flush()
	}
}

func (d *detachingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	hj, ok := d.w.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("server: connection cannot be hijacked")
	}
	c, brw, err := hj.Hijack()
	if err == nil {
		d.w = nil
	}
	return c, brw, err
}

// Unwrap lets http.ResponseController reach the wrapped writer.
func (d *detachingWriter) Unwrap() http.ResponseWriter { return d.inner() }

// coalescingListener wraps every accepted connection in a coalescingConn.
type coalescingListener struct{ net.Listener }

func (l coalescingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newCoalescingConn(c), nil
}

// maxPending bounds what a connection may hold unwritten. A peer that lets
// more pile up is not reading: its connection is closed rather than let
// writers wait on it (they may be relaying for other devices).
const maxPending = 8 << 20

// errSlowReader ends a connection whose peer stopped reading.
var errSlowReader = errors.New("peer is not reading: more than 8 MiB unsent")

// closeWait bounds how long Close waits for pending bytes to go out.
const closeWait = time.Second

// coalescingConn gathers the writes made to a connection while a write is
// under way and sends them in one system call. The socket.io library
// writes every packet as its own websocket frame, each with its own
// system call; under load, many frames for the same connection are ready
// at once, and writing them together costs one call instead of many. A
// write returns once its bytes are queued; a flusher goroutine, started
// when there is something to write and gone when there is not, does the
// writing. Write never waits on the network. An error from the flusher is
// returned by the next Write, and closes the connection.
type coalescingConn struct {
	net.Conn

	mu       sync.Mutex // guards pending, spare, flushing, err, deadline, closed
	cond     *sync.Cond // signalled when a flush ends
	pending  []byte     // bytes written and not yet handed to the kernel
	spare    []byte     // the previous flush's buffer, reused
	flushing bool
	err      error
	deadline time.Time
	closed   bool
}

func newCoalescingConn(c net.Conn) *coalescingConn {
	cc := &coalescingConn{Conn: c}
	cc.cond = sync.NewCond(&cc.mu)
	return cc
}

func (c *coalescingConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil && len(c.pending) > 0 && len(c.pending)+len(b) > maxPending {
		c.err = errSlowReader
		_ = c.Conn.Close()
	}
	if c.err != nil {
		return 0, c.err
	}
	if c.closed {
		return 0, net.ErrClosed
	}
	if c.pending == nil && c.spare != nil {
		c.pending, c.spare = c.spare[:0], nil
	}
	c.pending = append(c.pending, b...)
	if !c.flushing {
		c.flushing = true
		go c.flush()
	}
	return len(b), nil
}

// flush writes what is pending until nothing is.
func (c *coalescingConn) flush() {
	c.mu.Lock()
	var applied time.Time
	for len(c.pending) > 0 && c.err == nil {
		buf := c.pending
		c.pending = nil
		deadline := c.deadline
		c.mu.Unlock()
		if !deadline.Equal(applied) {
			_ = c.Conn.SetWriteDeadline(deadline)
			applied = deadline
		}
		_, err := c.Conn.Write(buf)
		c.mu.Lock()
		if err != nil {
			c.err = err
			_ = c.Conn.Close()
		}
		// Keep the buffer for the next burst unless it grew large.
		if cap(buf) <= 64<<10 {
			c.spare = buf[:0]
		}
	}
	c.flushing = false
	if len(c.pending) == 0 {
		// An idle connection keeps no buffer.
		c.pending, c.spare = nil, nil
	}
	c.cond.Broadcast()
	c.mu.Unlock()
}

// SetWriteDeadline applies to the flushes that start after it.
func (c *coalescingConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return nil
}

func (c *coalescingConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// Close sends what is pending, waiting at most closeWait for a peer that
// does not read, then closes the connection.
func (c *coalescingConn) Close() error {
	c.mu.Lock()
	c.closed = true
	if c.flushing {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(closeWait))
	}
	for c.flushing {
		c.cond.Wait()
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

// CloseWrite lets net/http half-close the connection after a response.
func (c *coalescingConn) CloseWrite() error {
	c.mu.Lock()
	for c.flushing {
		c.cond.Wait()
	}
	c.mu.Unlock()
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

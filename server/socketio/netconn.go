package socketio

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"
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

// coalescingConn writes without ever waiting on the network, and
// gathers the writes made while one is under way into one system call.
//
// A write to an idle connection (none for burstGap), what nearly every
// write is at the rates of a fleet of devices, goes to the kernel at once
// from the writer's goroutine, in one non-blocking system call: no
// goroutine is started and none woken. What the kernel does not take at
// once (its buffer is full), and what other goroutines write meanwhile,
// is pending; the writer that
// found the connection idle writes it too, as long as the kernel takes it
// all, at most inlineRounds times, and then hands what is left to a
// flusher goroutine, which waits on the network for as long as it takes.
// Under load, many frames for one connection are ready at once, and
// writing them together costs one call instead of many. An error from a
// flusher is returned by the next Write, and closes the connection.
type coalescingConn struct {
	net.Conn
	raw syscall.RawConn // nil when c cannot be written without waiting

	mu       sync.Mutex // guards pending, spare, flushing, err, deadline, closed
	cond     *sync.Cond // signalled when a flush ends
	pending  []byte     // bytes written and not yet handed to the kernel
	spare    []byte     // the previous flush's buffer, reused
	flushing bool       // a writer or the flusher is writing
	lastRaw  int64      // when the last Write came, in ns on epoch's clock
	err      error
	deadline time.Time
	closed   bool
}

// burstGap tells a burst from an idle connection: a Write that comes
// sooner than this after the one before goes to the flusher, which runs
// once the senders yield and writes everything they wrote meanwhile in one
// call (a relay under load writes many frames to a connection at once:
// written one by one at once, they took twice the CPU); a later one is
// written at once. At a device fleet's pace nearly every write is later.
const burstGap = 200 * time.Microsecond

// epoch is the origin of lastRaw's clock (monotonic).
var epoch = time.Now()

// inlineRounds bounds how many times a writer that found its connection
// idle writes what other goroutines made pending meanwhile, before it hands
// the rest to a flusher: a writer relays for its own device, and should not
// spend long writing for others.
const inlineRounds = 4

func newCoalescingConn(c net.Conn) *coalescingConn {
	cc := &coalescingConn{Conn: c}
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			cc.raw = raw
		}
	}
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
	now := int64(time.Since(epoch))
	busy := now-c.lastRaw < int64(burstGap)
	c.lastRaw = now
	if c.flushing {
		c.queue(b)
		return len(b), nil
	}
	c.flushing = true
	if c.raw == nil || busy {
		// A burst: the flusher writes it once the senders yield.
		c.queue(b)
		go c.flush()
		return len(b), nil
	}
	// The connection is idle: write now, then what others queued meanwhile.
	for round := 0; ; round++ {
		c.mu.Unlock()
		n, err := c.writeNow(b)
		c.mu.Lock()
		if err != nil {
			c.err = err
			_ = c.Conn.Close()
			c.pending = nil
			c.flushing = false
			c.cond.Broadcast()
			return 0, err
		}
		if n < len(b) {
			// The kernel's buffer is full: the rest goes first.
			rest := b[n:]
			if len(c.pending) > 0 {
				rest = append(append(make([]byte, 0, len(rest)+len(c.pending)), rest...), c.pending...)
			}
			c.pending = nil
			c.queue(rest)
			go c.flush()
			return len(b), nil
		}
		if round > 0 {
			c.recycle(b)
		}
		if len(c.pending) == 0 {
			c.flushing = false
			c.pending, c.spare = nil, nil
			c.cond.Broadcast()
			return len(b), nil
		}
		if round+1 == inlineRounds {
			go c.flush()
			return len(b), nil
		}
		b, c.pending = c.pending, nil
	}
}

// queue adds b to what is pending. c.mu must be held.
func (c *coalescingConn) queue(b []byte) {
	if c.pending == nil && c.spare != nil {
		c.pending, c.spare = c.spare[:0], nil
	}
	c.pending = append(c.pending, b...)
}

// recycle keeps a written buffer for the next burst unless it grew large.
// c.mu must be held.
func (c *coalescingConn) recycle(buf []byte) {
	if cap(buf) <= 64<<10 {
		c.spare = buf[:0]
	}
}

// writeNow writes what the kernel takes of b at once, without waiting:
// a full socket buffer, or a write deadline that has passed, writes
// nothing (the flusher then waits, and applies deadlines).
func (c *coalescingConn) writeNow(b []byte) (int, error) {
	var n int
	var serr error
	err := c.raw.Write(func(fd uintptr) bool {
		for {
			n, serr = nonBlocking(syscall.SYS_WRITE, fd, b)
			if serr != syscall.EINTR {
				return true
			}
		}
	})
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return 0, nil
	case err != nil:
		return 0, &net.OpError{Op: "write", Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: unwrapOp(err)}
	case serr == syscall.EAGAIN:
		return 0, nil
	case serr != nil:
		return 0, &net.OpError{Op: "write", Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("write", serr)}
	}
	return n, nil
}

// Read reads what the kernel has for c, as net.Conn's Read does (it waits
// on Go's network poller until there is something), each read a
// nonBlocking system call.
func (c *coalescingConn) Read(p []byte) (int, error) {
	if c.raw == nil || len(p) == 0 {
		return c.Conn.Read(p)
	}
	var n int
	var serr error
	err := c.raw.Read(func(fd uintptr) bool {
		for {
			n, serr = nonBlocking(syscall.SYS_READ, fd, p)
			if serr != syscall.EINTR {
				break
			}
		}
		return serr != syscall.EAGAIN // else wait until readable
	})
	switch {
	case err != nil:
		return 0, &net.OpError{Op: "read", Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: unwrapOp(err)}
	case serr != nil:
		return 0, &net.OpError{Op: "read", Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("read", serr)}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// maxRaw is the largest read or write nonBlocking makes without telling
// the scheduler: copying it takes the kernel some tens of microseconds.
const maxRaw = 64 << 10

// nonBlocking reads or writes (trap) b on a non-blocking descriptor, which
// never sleeps: it returns EAGAIN when it cannot go on. Up to maxRaw bytes,
// it goes straight to the kernel without telling Go's scheduler, as the
// runtime's own calls that cannot block do. A system call the scheduler
// knows of lets its thread be taken for others if it lasts more than about
// 20µs, as a write's delivery over loopback often does: a relay on one
// core then shuffled its P between threads several times per message,
// each time a context switch, and each first call after an idle spell
// woke the runtime's monitor thread too.
func nonBlocking(trap uintptr, fd uintptr, b []byte) (int, error) {
	if len(b) > maxRaw {
		if trap == syscall.SYS_READ {
			return syscall.Read(int(fd), b)
		}
		return syscall.Write(int(fd), b)
	}
	r, _, errno := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

// unwrapOp returns the error a net.OpError wraps (RawConn wraps its own
// as "raw-write"), or err.
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Err
	}
	return err
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
		c.recycle(buf)
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

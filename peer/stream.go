package peer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	sio "github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/p2prelay/p2prelay/protocol"
)

// Errors of streams.
var (
	// ErrStreamEnded: the stream ended before its end (the pair ended,
	// the connection dropped, or the peer refused a chunk). Data read
	// before it is complete up to that point only.
	ErrStreamEnded = errors.New("the stream ended before its end")
	// ErrStreamClosed: this end was closed.
	ErrStreamClosed = errors.New("stream closed")
)

// Stream is one end of a byte stream between two paired devices, carried
// the way the original plugin's generation-2 streams are: Write sends
// chunks (P2P_EMIT_ACKNOWLEDGE of event P2P_EMIT_STREAM), Read returns the
// chunks the other end sends. Both ends may write.
//
// Back-pressure: a writer has at most Config.StreamWindow chunks in flight;
// the reader acknowledges a chunk once it has room for more (its buffer
// holds less than Config.StreamBuffer bytes), so a reader that does not
// read stops the writer.
//
// The wire has no end-of-stream; p2ppeer and this package mark it with an
// empty chunk, which CloseWrite sends and after which Read returns io.EOF.
// (Original JavaScript ends ignore an empty chunk, and never send one: a
// stream from them ends with an error, ErrStreamEnded, when the pair ends.)
// The end marker's acknowledgement comes once the reader has read
// everything, so CloseWrite returns when the other end has all the data.
//
// The wire has no stream id either: a chunk goes to every end open on the
// receiving device. Streams end with the pair and with the connection.
// Read and Write may be called from different goroutines; two Writes at
// once take turns.
type Stream struct {
	p      *Peer
	target string // the device at the other end
	ctx    context.Context
	cancel context.CancelFunc // ends ctx when the stream ends

	wmu         sync.Mutex    // serialises Write, CloseWrite
	slots       chan struct{} // a token per chunk in flight
	writeClosed bool          // guarded by wmu

	mu       sync.Mutex // guards the fields below
	readable chan struct{}
	buf      [][]byte    // chunks received, not yet read
	buffered int         // bytes in buf
	held     []*chunkAck // chunks whose acknowledgement waits for room
	eof      *chunkAck   // the end marker, once it came
	err      error       // why the stream ended; nil while it runs
	done     chan struct{}
	closed   bool
	sent     int64 // bytes written
	received int64 // bytes read
}

// chunkAck is the acknowledgement of one received chunk, shared by the ends
// it went to: it is answered once every one has room.
type chunkAck struct {
	mu      sync.Mutex
	waiting int
	fn      func([]any, error)
	answer  []any // the values to answer with: none, or a refusal
}

// release answers the chunk once the last end waiting lets it go.
func (c *chunkAck) release() {
	c.mu.Lock()
	c.waiting--
	last := c.waiting == 0
	c.mu.Unlock()
	if last && c.fn != nil {
		answer := c.answer
		if answer == nil {
			answer = []any{}
		}
		c.fn(answer, nil)
	}
}

func newStream(p *Peer, target string) *Stream {
	ctx, cancel := context.WithCancel(p.ctx)
	return &Stream{
		p:        p,
		target:   target,
		ctx:      ctx,
		cancel:   cancel,
		slots:    make(chan struct{}, p.cfg.StreamWindow),
		readable: make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
}

// Peer returns the device at the other end.
func (s *Stream) Peer() string { return s.target }

// Stats returns the bytes written to and read from the stream so far.
func (s *Stream) Stats() (written, read int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent, s.received
}

// OpenStream asks the peer for a stream (P2P_REGISTER_STREAM) and returns
// this device's end once the peer accepted. A peer that does not take
// streams refuses (REFUSED); one that does not answer in time, TIMEOUT.
// The caller must Close the stream.
func (p *Peer) OpenStream(ctx context.Context) (*Stream, error) {
	p.mu.Lock()
	target := p.peer
	p.mu.Unlock()
	what := "open a stream"
	if target == "" {
		return nil, fmt.Errorf("peer: %s: %w", what, errNoPeer)
	}
	s := newStream(p, target)
	vals, err := p.requestThen(ctx, func(vals []any) {
		// Before any chunk the peer sends on its new end.
		if len(vals) > 0 && vals[0] == true {
			p.addStream(s)
		}
	}, what, protocol.EventRegisterStream, target)
	if err != nil {
		return nil, err
	}
	if len(vals) == 0 || vals[0] != true {
		refusal := protocol.ParseAckError(vals[min(1, len(vals)):])
		if refusal == nil {
			refusal = protocol.Errorf(protocol.CodeRefused, "device %q did not open a stream", target)
		}
		return nil, fmt.Errorf("peer: %s: %w", what, refusal)
	}
	return s, nil
}

// addStream makes s one of the ends chunks go to.
func (p *Peer) addStream(s *Stream) {
	p.mu.Lock()
	if p.streams == nil {
		p.streams = make(map[*Stream]struct{})
	}
	p.streams[s] = struct{}{}
	p.mu.Unlock()
}

// dropStream stops giving chunks to s.
func (p *Peer) dropStream(s *Stream) {
	p.mu.Lock()
	delete(p.streams, s)
	p.mu.Unlock()
}

// endStreams ends every open stream for err.
func (p *Peer) endStreams(err error) {
	p.mu.Lock()
	all := p.streams
	p.streams = nil
	p.mu.Unlock()
	for s := range all {
		s.end(err)
	}
}

// onStreamRequest answers the relay's P2P_REGISTER_STREAM(ack): yes, with
// a new end for Config.OnStream, while paired and OnStream is set.
func (p *Peer) onStreamRequest(ack sio.Ack) {
	if ack == nil {
		return
	}
	p.mu.Lock()
	target := p.peer
	p.mu.Unlock()
	if p.cfg.OnStream == nil || target == "" {
		ack([]any{false}, nil)
		return
	}
	s := newStream(p, target)
	p.addStream(s)
	ack([]any{true}, nil)
	p.disp.push(func() { p.cfg.OnStream(s) })
}

// onChunk hands a received chunk to every open end; its acknowledgement
// is answered once all have room.
func (p *Peer) onChunk(args []any, ack sio.Ack) {
	data, ok := chunkBytes(args)
	p.mu.Lock()
	ends := make([]*Stream, 0, len(p.streams))
	for s := range p.streams {
		ends = append(ends, s)
	}
	p.mu.Unlock()
	c := &chunkAck{waiting: 1 + len(ends), fn: ack}
	switch {
	case !ok:
		c.answer = []any{protocol.Errorf(protocol.CodeBadRequest, "a stream chunk must be binary").AckPayload()}
		ends = nil
	case len(ends) == 0:
		c.answer = []any{protocol.Errorf(protocol.CodeRefused, "no stream is open").AckPayload()}
	}
	for _, s := range ends {
		s.receive(data, c)
	}
	c.release()
}

// chunkBytes is the data of a chunk: binary (a string is taken as its
// bytes, for object-mode writers of text).
func chunkBytes(args []any) ([]byte, bool) {
	if len(args) != 1 {
		return nil, false
	}
	switch v := args[0].(type) {
	case []byte:
		return v, true
	case string:
		return []byte(v), true
	case interface{ Bytes() []byte }:
		return v.Bytes(), true
	}
	return nil, false
}

// receive buffers a chunk; an empty one is the end marker.
func (s *Stream) receive(data []byte, c *chunkAck) {
	s.mu.Lock()
	switch {
	case s.closed || s.err != nil || s.eof != nil:
		s.mu.Unlock()
		c.release()
		return
	case len(data) == 0:
		s.eof = c // answered when Read has returned everything
	default:
		s.buf = append(s.buf, data)
		s.buffered += len(data)
		if s.buffered >= s.p.cfg.StreamBuffer {
			s.held = append(s.held, c)
			c = nil
		}
	}
	s.mu.Unlock()
	s.wake()
	if c != nil && len(data) > 0 {
		c.release()
	}
}

func (s *Stream) wake() {
	select {
	case s.readable <- struct{}{}:
	default:
	}
}

// Read reads what the other end wrote. It returns io.EOF once the other
// end closed its writing side and everything was read, and
// ErrStreamEnded (wrapping why) when the stream ended before that.
func (s *Stream) Read(b []byte) (int, error) {
	return s.next(func(chunk []byte) int { return copy(b, chunk) })
}

// WriteTo writes what the other end writes to w, chunk by chunk, until the
// other end closes its writing side (nil) or the stream ends (an error).
func (s *Stream) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		var chunk []byte
		_, err := s.next(func(c []byte) int {
			chunk = c
			return len(c)
		})
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		n, werr := w.Write(chunk)
		total += int64(n)
		if werr != nil {
			return total, werr
		}
	}
}

// next waits for data and hands the first chunk buffered to take, which
// says how many of its bytes it took; it lets held chunks go once there is
// room. With nothing left it returns io.EOF after the end marker, else
// why the stream ended.
func (s *Stream) next(take func([]byte) int) (int, error) {
	for {
		s.mu.Lock()
		if len(s.buf) > 0 {
			n := take(s.buf[0])
			if n == len(s.buf[0]) {
				s.buf[0] = nil
				s.buf = s.buf[1:]
			} else {
				s.buf[0] = s.buf[0][n:]
			}
			s.buffered -= n
			s.received += int64(n)
			var room []*chunkAck
			if s.buffered < s.p.cfg.StreamBuffer {
				room, s.held = s.held, nil
			}
			s.mu.Unlock()
			for _, c := range room {
				c.release()
			}
			return n, nil
		}
		eof, err, closed := s.eof, s.err, s.closed
		if eof != nil && !closed {
			s.eof = &chunkAck{} // answered once
		}
		s.mu.Unlock()
		switch {
		case closed:
			return 0, ErrStreamClosed
		case eof != nil:
			eof.release()
			return 0, io.EOF
		case err != nil:
			return 0, err
		}
		<-s.readable
	}
}

// Write sends b to the other end, in chunks of Config.StreamChunk bytes at
// most, each as soon as fewer than Config.StreamWindow are in flight. It
// returns once the last chunk is sent; an error when the stream ended or a
// chunk was refused.
func (s *Stream) Write(b []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.writeClosed {
		return 0, ErrStreamClosed
	}
	n := 0
	for len(b) > 0 {
		c := b[:min(len(b), s.p.cfg.StreamChunk)]
		if err := s.send(bytes.Clone(c)); err != nil {
			return n, err
		}
		n += len(c)
		b = b[len(c):]
	}
	return n, nil
}

// ReadFrom sends what r gives until io.EOF, like Write but without the
// copy: each chunk is read into a buffer of its own. It does not close the
// writing side.
func (s *Stream) ReadFrom(r io.Reader) (int64, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.writeClosed {
		return 0, ErrStreamClosed
	}
	var total int64
	for {
		c := make([]byte, s.p.cfg.StreamChunk)
		n, err := io.ReadFull(r, c)
		if n > 0 {
			if serr := s.send(c[:n]); serr != nil {
				return total, serr
			}
			total += int64(n)
		}
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return total, nil
		case err != nil:
			return total, err
		}
	}
}

// send sends one chunk, which it owns, once a slot is free.
func (s *Stream) send(chunk []byte) error {
	if s.p.chunks != nil {
		if err := s.p.chunks.Wait(s.ctx); err != nil {
			return s.failure()
		}
	}
	select {
	case <-s.done:
		return s.failure()
	default:
	}
	select {
	case s.slots <- struct{}{}:
	case <-s.done:
		return s.failure()
	}
	payload := map[string]any{
		protocol.KeyTargetClientID: s.target,
		protocol.KeyEvent:          protocol.EventEmitStream,
		protocol.KeyArgs:           []any{chunk},
	}
	if err := s.p.ready(); err != nil {
		<-s.slots
		return err
	}
	err := s.p.emit(s.p.socket(), protocol.EventEmitAck, payload, sio.Ack(func(vals []any, err error) {
		<-s.slots
		switch {
		case err != nil:
			s.end(fmt.Errorf("%w: %w (%w)", ErrStreamEnded, ErrNotConnected, err))
		case len(vals) > 0:
			refusal := protocol.ParseAckError(vals)
			if refusal == nil {
				refusal = protocol.Errorf(protocol.CodeRefused, "the reader answered %v", vals)
			}
			s.end(fmt.Errorf("%w: %w", ErrStreamEnded, refusal))
		}
	}))
	if err != nil {
		<-s.slots
		return fmt.Errorf("peer: stream to %q: %w", s.target, err)
	}
	s.mu.Lock()
	s.sent += int64(len(chunk))
	s.mu.Unlock()
	return nil
}

// flush waits until no chunk is in flight. An acknowledgement that came
// before the stream ended counts: the socket handles packets in order, so
// its slot is free by the time the end is seen.
func (s *Stream) flush() error {
	for i := 0; i < cap(s.slots); i++ {
		select {
		case s.slots <- struct{}{}:
			continue
		case <-s.done:
		}
		select {
		case s.slots <- struct{}{}:
			continue
		default:
		}
		for ; i > 0; i-- {
			<-s.slots
		}
		return s.failure()
	}
	for i := 0; i < cap(s.slots); i++ {
		<-s.slots
	}
	return nil
}

// CloseWrite ends the writing side: it sends the end marker and returns
// once the other end has read everything (or the stream ended first).
func (s *Stream) CloseWrite() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.writeClosed {
		return nil
	}
	s.writeClosed = true
	if err := s.send([]byte{}); err != nil {
		return err
	}
	return s.flush()
}

// Close closes the writing side if it is open (CloseWrite) and stops
// reading: what the other end sends from then on is refused.
func (s *Stream) Close() error {
	err := s.CloseWrite()
	s.end(ErrStreamClosed)
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	if errors.Is(err, ErrStreamClosed) {
		err = nil
	}
	return err
}

// end ends the stream for err, once: writers stop, the chunks held for
// room are let go, and Read returns what was buffered, then err (io.EOF
// when the end marker came first). Chunks that come later go to the other
// ends, or are refused when there are none.
func (s *Stream) end(err error) {
	s.p.dropStream(s)
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	s.err = err
	held := s.held
	s.held = nil
	if s.eof != nil {
		held = append(held, s.eof)
		s.eof = &chunkAck{} // Read still returns io.EOF
	}
	close(s.done)
	s.mu.Unlock()
	s.cancel()
	s.wake()
	for _, c := range held {
		c.release()
	}
}

// failure is why writing stopped.
func (s *Stream) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		return ErrStreamEnded
	}
	return s.err
}

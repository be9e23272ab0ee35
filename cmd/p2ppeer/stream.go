package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	"github.com/p2prelay/p2prelay/peer"
)

// StreamCmd copies stdin to the peer and the peer's stream to stdout.
type StreamCmd struct {
	Target    string  `help:"The device to pair with and open the stream to; without it, wait for a device to pair and open one."`
	Wait      bool    `help:"Keep trying until the target is online and free."`
	Accept    string  `help:"Without --target: pair requests to accept: any, none, or ids separated by commas." default:"any"`
	Chunk     int     `help:"Largest chunk sent, in bytes; the relay's --max-payload bounds a chunk." default:"262144"`
	Window    int     `help:"Chunks sent before the first is acknowledged." default:"4"`
	ChunkRate float64 `help:"Chunks sent a second at most, in bursts of twice as many, to keep within the relay's --rate; 0 for no bound." default:"190"`
}

// Validate checks the sizes.
func (c *StreamCmd) Validate() error {
	switch {
	case c.Chunk < 1:
		return fmt.Errorf("--chunk must be positive, got %d", c.Chunk)
	case c.Window < 1:
		return fmt.Errorf("--window must be positive, got %d", c.Window)
	case c.ChunkRate < 0:
		return fmt.Errorf("--chunk-rate must be 0 (no bound) or positive, got %g", c.ChunkRate)
	}
	return nil
}

// streamGCPercent is the Go collector's target while streaming, unless
// GOGC says otherwise.
const streamGCPercent = 400

// progressEvery is how often a terminal's progress line is redrawn.
const progressEvery = time.Second

// Run opens (--target) or takes a stream, sends stdin on it unless stdin
// is a terminal, writes what comes to stdout, and exits once both ways
// have ended. Everything else it says goes to stderr.
func (c *StreamCmd) Run(g *Globals, env *Env, pr *printer) error {
	id, err := g.requireID()
	if err != nil {
		return err
	}
	sc := sessionConfig{id: id, accept: peer.AcceptNone(), wait: c.Wait}
	if c.Target != "" {
		if err := validTarget("--target", c.Target); err != nil {
			return err
		}
	} else if sc.accept, err = parseAccept(c.Accept); err != nil {
		return err
	}
	if _, set := os.LookupEnv("GOGC"); !set {
		// The socket.io library allocates several times each chunk as it
		// reads and writes it: collecting less often doubles the
		// throughput (p2pd does the same, --gc-percent).
		debug.SetGCPercent(streamGCPercent)
	}
	rate := c.ChunkRate
	if rate == 0 {
		rate = -1
	}
	sc.stream = streamConfig{chunk: c.Chunk, window: c.Window, rate: rate}
	streams := make(chan *peer.Stream, 1)
	sc.onStream = func(st *peer.Stream) {
		select {
		case streams <- st:
		default:
			go st.Close() // one stream at a time
		}
	}
	pr.setWriters(env.Stderr, env.Stderr) // stdout is the data
	pr.quiet = !g.JSON
	s, err := openSession(env, g, pr, sc)
	if err != nil {
		return err
	}
	defer s.close()

	var st *peer.Stream
	if c.Target != "" {
		if err := s.pair(env.Ctx, c.Target); err != nil {
			return pairError{target: c.Target, err: err}
		}
		ctx, cancel := context.WithTimeout(env.Ctx, g.Timeout)
		st, err = s.p.OpenStream(ctx)
		cancel()
		if err != nil {
			return err
		}
	} else {
		select {
		case st = <-streams:
		case <-env.Ctx.Done():
			return context.Cause(env.Ctx)
		case <-s.p.Done():
			return s.ended()
		}
	}
	defer st.Close()
	pr.streamOpen(st.Peer())
	return copyBothWays(env, pr, s, st)
}

// copyBothWays sends stdin (unless it is a terminal) and writes what comes
// to stdout, until both ways have ended; it shows the progress on a
// terminal and the throughput at the end.
func copyBothWays(env *Env, pr *printer, s *session, st *peer.Stream) error {
	start := time.Now()
	type end struct {
		err  error
		took time.Duration
	}
	sent, received := make(chan end, 1), make(chan end, 1)
	go func() {
		var err error
		if !env.Interactive {
			_, err = st.ReadFrom(env.Stdin)
		}
		if err == nil {
			err = st.CloseWrite() // returns once the peer has read it all
		}
		sent <- end{err, time.Since(start)}
	}()
	go func() {
		_, err := io.Copy(env.Stdout, st)
		received <- end{err, time.Since(start)}
	}()
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	var out, in *end
	for out == nil || in == nil {
		select {
		case e := <-sent:
			out = &e
		case e := <-received:
			in = &e
		case <-tick.C:
			if env.ErrTerminal && !pr.json {
				w, r := st.Stats()
				pr.progress(w, r, time.Since(start))
			}
		case <-env.Ctx.Done():
			return context.Cause(env.Ctx)
		case <-s.p.Done():
			return s.ended()
		}
	}
	w, r := st.Stats()
	pr.streamDone(st.Peer(), w, out.took, r, in.took, env.ErrTerminal)
	switch {
	case out.err != nil:
		return fmt.Errorf("stream to %s: %w", st.Peer(), out.err)
	case in.err != nil:
		return fmt.Errorf("stream from %s: %w", st.Peer(), in.err)
	}
	return nil
}

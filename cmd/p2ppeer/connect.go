package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"

	"github.com/chzyer/readline"

	"github.com/p2prelay/p2prelay/peer"
)

// ConnectCmd registers, pairs, then runs commands from a prompt or stdin.
type ConnectCmd struct {
	Target string `help:"The device to pair with at once (else pair later with the pair command)."`
	Wait   bool   `help:"Keep trying until the target is online and free."`
	AnswerFlags
}

// promptHelp lists the prompt's commands.
const promptHelp = `commands:
  emit EVENT [ARG...]   send an event to the peer
  ack EVENT [ARG...]    send an event and print the peer's answer when it comes
  pair ID               pair with another device (unpairing first)
  unpair                end the pair
  devices [available]   list the devices (only those free to pair)
  help                  this list
  quit                  unpair and leave
each ARG is JSON when it reads as JSON ({"x": 1}, 2, true, "two words"),
otherwise a string`

// Run is the connect command. At a terminal it shows a prompt; otherwise it
// reads the same commands from stdin, one per line, and exits after quit
// or the end of input, once the acknowledgements under way are answered.
// The exit status is the session's: a command that fails at the prompt is
// reported and forgotten (it was seen, and maybe typed again), while a
// script exits with the status of its first command that failed.
func (c *ConnectCmd) Run(g *Globals, env *Env, pr *printer) error {
	id, err := g.requireID()
	if err != nil {
		return err
	}
	if c.Target != "" {
		if err := validTarget("--target", c.Target); err != nil {
			return err
		}
	}
	sc, err := c.session(id)
	if err != nil {
		return err
	}
	// A pair lost while the connection was down is made again.
	sc.wait, sc.repair = c.Wait, true
	s, err := openSession(env, g, pr, sc)
	if err != nil {
		return err
	}
	defer s.close()
	if c.Target != "" {
		if err := s.pair(env.Ctx, c.Target); err != nil {
			return pairError{target: c.Target, err: err}
		}
	}

	var in lineReader
	if env.Interactive {
		rl, err := newPrompt(s, pr)
		if err != nil {
			return err
		}
		in = rl
		pr.info(s.pr.st.Dim.Render(`type "help" for the commands`))
	} else {
		in = newScriptReader(env.Stdin)
	}
	defer in.Close()
	return s.commands(in)
}

// lineReader gives the command lines, one at a time.
type lineReader interface {
	// ReadLine returns the next line; io.EOF at the end.
	ReadLine() (string, error)
	Close() error
}

// commands runs the lines of in until quit, the end, a signal, or the
// relay closing the device.
func (s *session) commands(in lineReader) error {
	type result struct {
		line string
		err  error
	}
	lines := make(chan result)
	next := make(chan struct{})
	stop := make(chan struct{})
	defer close(stop)
	// One line at a time: the next is read (and the prompt shown) once the
	// previous command is done.
	go func() {
		for {
			line, err := in.ReadLine()
			select {
			case lines <- result{line, err}:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
			select {
			case <-next:
			case <-stop:
				return
			}
		}
	}()
	for {
		select {
		case <-s.env.Ctx.Done():
			s.leave()
			return context.Cause(s.env.Ctx)
		case <-s.p.Done():
			return s.ended()
		case r := <-lines:
			var ie interrupted
			if errors.As(r.err, &ie) {
				s.leave()
				return r.err
			}
			if r.err != nil {
				s.leave()
				return s.failed()
			}
			if s.exec(r.line) {
				s.leave()
				return s.failed()
			}
			next <- struct{}{}
		}
	}
}

// exec runs one command line; it reports whether to quit.
func (s *session) exec(line string) bool {
	if strings.HasPrefix(strings.TrimSpace(line), "#") {
		return false
	}
	words, err := splitLine(line)
	if err != nil {
		s.fail(err)
		return false
	}
	if len(words) == 0 {
		return false
	}
	ctx := s.env.Ctx
	cmd, rest := strings.ToLower(words[0].text), words[1:]
	switch cmd {
	case "quit", "exit":
		return true
	case "help", "?":
		s.pr.info(promptHelp)
	case "emit", "ack":
		if len(rest) == 0 {
			s.fail(usageError{fmt.Errorf("%s needs an event name: %s EVENT [ARG...]", cmd, cmd)})
			return false
		}
		event := rest[0].text
		args := make([]any, 0, len(rest)-1)
		for _, w := range rest[1:] {
			args = append(args, w.value)
		}
		if cmd == "emit" {
			if err := s.p.Emit(ctx, event, args...); err != nil {
				s.fail(requestError{cmd, event, err})
				return false
			}
			s.pr.sent(event, args)
			return false
		}
		// Sent now, in order with the commands around it; answered
		// whenever the peer answers.
		answer := s.p.EmitAckAsync(ctx, event, args...)
		s.acks.Add(1)
		go func() {
			defer s.acks.Done()
			a := <-answer
			if a.Err != nil {
				s.fail(requestError{cmd, event, a.Err})
				return
			}
			s.pr.ack(event, a.Args)
		}()
	case "pair":
		if len(rest) != 1 {
			s.fail(usageError{errors.New("pair needs one device id: pair ID")})
			return false
		}
		s.pairCommand(ctx, rest[0].text)
	case "unpair":
		if err := s.unpair(ctx); err != nil {
			s.fail(err)
		}
	case "devices":
		only := len(rest) > 0 && strings.TrimLeft(rest[0].text, "-") == "available"
		list, err := s.p.Devices(ctx, only)
		if err != nil {
			s.fail(err)
			return false
		}
		s.pr.devices(list)
	default:
		s.fail(usageError{fmt.Errorf("unknown command %q (type help)", cmd)})
	}
	return false
}

// pairCommand pairs with target, ending the current pair first.
func (s *session) pairCommand(ctx context.Context, target string) {
	if err := validTarget("pair", target); err != nil {
		s.fail(err)
		return
	}
	if current, ok := s.p.Peer(); ok {
		if current == target {
			s.pr.info("already paired with " + target)
			return
		}
		if err := s.unpair(ctx); err != nil && !errors.Is(err, peer.ErrNotPaired) {
			s.fail(err)
			return
		}
	}
	// With --wait it waits for the target, --timeout at most.
	ctx, cancel := context.WithTimeout(ctx, s.g.Timeout)
	defer cancel()
	if err := s.pair(ctx, target); err != nil {
		s.fail(pairError{target: target, err: err})
	}
}

// scriptReader reads command lines from a script's stdin.
type scriptReader struct {
	sc *bufio.Scanner
	r  io.Reader
}

func newScriptReader(r io.Reader) *scriptReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	return &scriptReader{sc: sc, r: r}
}

func (r *scriptReader) ReadLine() (string, error) {
	if r.sc.Scan() {
		return r.sc.Text(), nil
	}
	if err := r.sc.Err(); err != nil {
		return "", err
	}
	return "", io.EOF
}

func (r *scriptReader) Close() error { return nil }

// prompt is the interactive line editor: output printed while a line is
// being typed appears above it, and the line is drawn again.
type prompt struct {
	rl *readline.Instance
}

// newPrompt starts the line editor and sends the printer's output through
// it.
func newPrompt(s *session, pr *printer) (*prompt, error) {
	rl, err := readline.NewEx(&readline.Config{
		InterruptPrompt: "^C",
		EOFPrompt:       "quit",
		Stdin:           io.NopCloser(s.env.Stdin),
		Stdout:          s.env.Stdout,
		Stderr:          s.env.Stderr,
	})
	if err != nil {
		return nil, fmt.Errorf("start the prompt: %w", err)
	}
	pr.setWriters(rl.Stdout(), rl.Stderr())
	setPrompt := func(with string) {
		text := s.p.ID()
		if with != "" {
			text += "<>" + with
		}
		rl.SetPrompt(pr.st.Event.Render(text+">") + " ")
		rl.Refresh()
	}
	current, _ := s.p.Peer()
	setPrompt(current)
	s.setPromptHook(setPrompt)
	return &prompt{rl: rl}, nil
}

// ReadLine returns the next line; Ctrl-D ends (io.EOF), Ctrl-C clears the
// line being typed, and on an empty line interrupts.
func (p *prompt) ReadLine() (string, error) {
	for {
		line, err := p.rl.Readline()
		switch {
		case errors.Is(err, readline.ErrInterrupt):
			if line == "" {
				return "", interrupted{syscall.SIGINT}
			}
			continue
		case err != nil:
			return "", err
		}
		return line, nil
	}
}

func (p *prompt) Close() error { return p.rl.Close() }

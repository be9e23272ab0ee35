// Command p2ppeer is a device of the P2P relay, from the terminal and from
// scripts: it registers with an id, pairs with another device, sends it
// events (with or without an acknowledgement) and answers the events it
// receives.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/charmbracelet/lipgloss"
	"github.com/chzyer/readline"
	"github.com/muesli/termenv"

	"github.com/p2prelay/p2prelay/internal/cmdline"
	"github.com/p2prelay/p2prelay/internal/version"
	"github.com/p2prelay/p2prelay/peer"
	"github.com/p2prelay/p2prelay/protocol"
)

// CLI is p2ppeer's command line.
type CLI struct {
	Globals

	Connect ConnectCmd       `cmd:"" help:"Register, pair with a target, then send and receive events at a prompt (or from stdin)."`
	Listen  ListenCmd        `cmd:"" help:"Wait for pair requests and print every event; answer acknowledgements."`
	Emit    EmitCmd          `cmd:"" help:"Connect, pair, send one event (and wait for the answer with --ack), unpair, exit."`
	Stream  StreamCmd        `cmd:"" help:"Copy stdin to the peer and the peer's stream to stdout, with back-pressure."`
	Devices DevicesCmd       `cmd:"" help:"List the devices connected to the relay."`
	Version kong.VersionFlag `help:"Print the version and exit."`
}

// Globals are the flags every command takes.
type Globals struct {
	URL     string        `help:"Relay URL." default:"http://127.0.0.1:9000" env:"P2P_URL"`
	ID      string        `help:"This device's id." env:"P2P_ID"`
	Token   string        `help:"Device token, sent to the relay when given." env:"P2P_TOKEN"`
	Timeout time.Duration `help:"How long to wait for the relay, for a pairing answer and for an acknowledgement." default:"10s" env:"P2P_TIMEOUT"`
	JSON    bool          `help:"Print one JSON object per line." env:"P2P_JSON"`
}

// Validate checks the global flags.
func (g *Globals) Validate() error {
	if g.Timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, got %s", g.Timeout)
	}
	return nil
}

// requireID returns --id, which the command needs.
func (g *Globals) requireID() (string, error) {
	if g.ID == "" {
		return "", usageError{errors.New("--id (or P2P_ID) is required: the id this device registers with")}
	}
	if err := protocol.ValidateID(g.ID); err != nil {
		return "", usageError{fmt.Errorf("--id: %w", err)}
	}
	return g.ID, nil
}

// Env is what a command runs with.
type Env struct {
	// Ctx ends on SIGINT or SIGTERM, with an interrupted cause.
	Ctx    context.Context
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Interactive: stdin is a terminal, so connect shows a prompt.
	Interactive bool
	// Colour: stdout is a terminal that wants colour.
	Colour bool
	// ErrTerminal: stderr is a terminal, where progress may redraw a line.
	ErrTerminal bool
}

// Exit codes. A command interrupted by a signal exits 128 + the signal's
// number (130 for SIGINT), as shells report it.
const (
	exitOK      = 0
	exitFailure = 1 // anything else
	exitUsage   = 2
	exitPairing = 3 // offline, busy, refused, self
	exitTimeout = 4
	exitConnect = 5 // could not connect, or not authorised
	exitClosed  = 6 // the relay closed the device for good: kicked, id taken over
)

// interrupted is why a command stopped early: a signal, or Ctrl-C at the
// prompt.
type interrupted struct{ sig syscall.Signal }

func (e interrupted) Error() string { return "interrupted (" + e.sig.String() + ")" }

// status is the exit status of a command interrupted by e.
func (e interrupted) status() int { return 128 + int(e.sig) }

// closedError is the relay closing the device for good.
type closedError struct{ err error }

func (e closedError) Unwrap() error { return e.err }

func (e closedError) Error() string {
	switch protocol.CodeOf(e.err) {
	case protocol.CodeKicked:
		return "kicked by an operator (" + reason(e.err) + ")"
	case protocol.CodeTakenOver:
		return "another connection took this device's id (" + reason(e.err) + ")"
	}
	return "the relay closed the connection: " + reason(e.err)
}

// usageError is bad input on the command line or at the prompt.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// pairError is a failed pairing with target.
type pairError struct {
	target string
	err    error
}

func (e pairError) Error() string { return fmt.Sprintf("pairing with %s failed: %v", e.target, e.err) }
func (e pairError) Unwrap() error { return e.err }

// reportedError was printed already; it only sets the exit code.
type reportedError struct{ error }

func (e reportedError) Unwrap() error { return e.error }

// exitCode maps an error to the process's exit status.
func exitCode(err error) int {
	var ue usageError
	var pe pairError
	var ie interrupted
	code := protocol.CodeOf(err)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ie):
		return ie.status()
	case errors.As(err, &ue):
		return exitUsage
	case code == protocol.CodeKicked || code == protocol.CodeTakenOver:
		return exitClosed
	case errors.As(err, &pe):
		if code == protocol.CodeTimeout || errors.Is(err, context.DeadlineExceeded) {
			return exitTimeout
		}
		if isConnectFailure(err) {
			return exitConnect
		}
		if code == "" {
			return exitFailure
		}
		return exitPairing
	case isConnectFailure(err):
		return exitConnect
	case code == protocol.CodeTimeout || errors.Is(err, context.DeadlineExceeded):
		return exitTimeout
	}
	return exitFailure
}

// isConnectFailure: the relay could not be reached or refused this device.
func isConnectFailure(err error) bool {
	if errors.Is(err, peer.ErrConnect) {
		return true
	}
	switch protocol.CodeOf(err) {
	case protocol.CodeUnauthorized, protocol.CodeBadID, protocol.CodeIDInUse, protocol.CodeServerFull:
		return true
	}
	return false
}

// run parses args, runs the command and returns the exit status.
func run(env *Env, args []string) int {
	var cli CLI
	parser, err := cmdline.New(&cli,
		kong.Name("p2ppeer"),
		kong.Description("A device of the P2P relay, from the terminal and from scripts."),
		kong.Writers(env.Stdout, env.Stderr),
		kong.Vars{"version": version.String()},
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
	)
	if err != nil {
		fmt.Fprintln(env.Stderr, "p2ppeer:", err)
		return exitFailure
	}
	kctx, status, exited, err := cmdline.Parse(parser, args)
	if exited {
		return status
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "p2ppeer: %v (see p2ppeer --help)\n", err)
		return exitUsage
	}
	r := lipgloss.NewRenderer(env.Stdout)
	if !env.Colour {
		r.SetColorProfile(termenv.Ascii)
	}
	pr := newPrinter(env.Stdout, env.Stderr, cli.JSON, NewStyles(r))
	err = kctx.Run(&cli.Globals, env, pr)
	var rep reportedError
	var pe pairError
	var ie interrupted
	if err != nil && errors.As(context.Cause(env.Ctx), &ie) && !errors.As(err, &ie) {
		// Whatever failed, failed because of the signal: say nothing.
		err = ie
	}
	switch {
	case err == nil:
	case errors.As(err, &ie):
	case errors.As(err, &rep):
	case errors.As(err, &pe):
		pr.pairFailed(pe.target, pe.err)
	default:
		pr.error(err)
	}
	return exitCode(err)
}

// interruptible returns a context that ends, with an interrupted cause, on
// the first SIGINT or SIGTERM; a second one ends the process at once.
func interruptible() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case sig := <-sigs:
			signal.Stop(sigs)
			cancel(interrupted{sig.(syscall.Signal)})
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		cancel(nil)
	}
}

func main() {
	ctx, stop := interruptible()
	_, noColour := os.LookupEnv("NO_COLOR")
	env := &Env{
		Ctx:         ctx,
		Stdin:       os.Stdin,
		Stdout:      os.Stdout,
		Stderr:      os.Stderr,
		Interactive: readline.IsTerminal(int(os.Stdin.Fd())),
		ErrTerminal: readline.IsTerminal(int(os.Stderr.Fd())),
		Colour:      readline.IsTerminal(int(os.Stdout.Fd())) && !noColour && !strings.EqualFold(os.Getenv("TERM"), "dumb"),
	}
	status := run(env, os.Args[1:])
	stop()
	os.Exit(status)
}

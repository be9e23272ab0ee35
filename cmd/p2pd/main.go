// Command p2pd is the P2P relay daemon: devices connect with an id, pair 1:1
// through it and send events to their peer.
package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kong"

	"github.com/p2prelay/p2prelay/internal/version"
	"github.com/p2prelay/p2prelay/server"
	"github.com/p2prelay/p2prelay/server/socketio"
)

// CLI is p2pd's command line.
type CLI struct {
	Serve   ServeCmd         `cmd:"" default:"withargs" help:"Serve the relay (the default command)."`
	Token   TokenCmd         `cmd:"" help:"Print a device token (a JWT signed with the device secret)."`
	Version kong.VersionFlag `help:"Print the version and exit."`
}

// LogFlags configure the structured logs.
type LogFlags struct {
	LogLevel  string `help:"Log level: debug, info, warn or error." default:"info" enum:"debug,info,warn,error" env:"P2PD_LOG_LEVEL"`
	LogFormat string `help:"Log format: text or json." default:"text" enum:"text,json" env:"P2PD_LOG_FORMAT"`
}

// Logger returns the slog.Logger these flags describe, writing to stderr.
func (f LogFlags) Logger() *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(f.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if f.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// ServeCmd serves the relay.
type ServeCmd struct {
	Listen       string        `help:"Address to listen on (host:port)." default:":9000" env:"P2PD_LISTEN"`
	PingInterval time.Duration `help:"Engine.IO heartbeat interval." default:"25s" env:"P2PD_PING_INTERVAL"`
	PingTimeout  time.Duration `help:"How long a device may miss heartbeats before it counts as gone." default:"20s" env:"P2PD_PING_TIMEOUT"`
	PairTimeout  time.Duration `help:"How long a target has to answer a pairing request." default:"10s" env:"P2PD_PAIR_TIMEOUT"`
	AckTimeout   time.Duration `help:"How long a peer has to answer a relayed acknowledgement." default:"30s" env:"P2PD_ACK_TIMEOUT"`
	DuplicateID  string        `help:"What to do when a device connects with an id already in use: reject or takeover." default:"reject" enum:"reject,takeover" env:"P2PD_DUPLICATE_ID"`
	ShutdownWait time.Duration `help:"How long a graceful shutdown may take." default:"5s" env:"P2PD_SHUTDOWN_WAIT"`
	ResumeWindow time.Duration `help:"How long a paired device whose connection dropped keeps its pair, with messages held for it, before its peer is told (0: off)." default:"5s" env:"P2PD_RESUME_WINDOW"`
	ReclaimCheck time.Duration `help:"How long the live holder of an id has to answer when a new connection claims the id; one that does not gives way (0: never check, refuse with ID_IN_USE)." default:"2s" env:"P2PD_RECLAIM_CHECK"`
	LogFlags
	AdminFlags
	SecurityFlags
	LimitFlags
	MemoryFlags
	ClusterFlags
	DebugFlags
}

// Validate checks the flags together.
func (c *ServeCmd) Validate() error {
	for name, d := range map[string]time.Duration{
		"--ping-interval": c.PingInterval, "--ping-timeout": c.PingTimeout,
		"--pair-timeout": c.PairTimeout, "--ack-timeout": c.AckTimeout, "--shutdown-wait": c.ShutdownWait,
	} {
		if d <= 0 {
			return fmt.Errorf("%s must be positive, got %s", name, d)
		}
	}
	for name, d := range map[string]time.Duration{"--resume-window": c.ResumeWindow, "--reclaim-check": c.ReclaimCheck} {
		if d < 0 {
			return fmt.Errorf("%s must be 0 (off) or positive, got %s", name, d)
		}
	}
	if err := c.SecurityFlags.validate(c.AdminToken); err != nil {
		return err
	}
	if err := c.MemoryFlags.validate(); err != nil {
		return err
	}
	if err := c.ClusterFlags.validate(); err != nil {
		return err
	}
	return c.LimitFlags.validate()
}

// offIfZero maps a flag's 0 (off) to the relay's negative (off); the
// relay reads 0 as its default.
func offIfZero(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// Run serves until ctx ends, then shuts down gracefully.
func (c *ServeCmd) Run(ctx context.Context) error {
	// Bind first: a port in use fails before any token is made or told.
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.Listen, err)
	}
	return c.serve(ctx, ln, c.Logger())
}

// serve serves on ln until ctx ends, then shuts down gracefully. It
// closes ln.
func (c *ServeCmd) serve(ctx context.Context, ln net.Listener, log *slog.Logger) error {
	serving := false
	defer func() {
		if !serving {
			_ = ln.Close()
		}
	}()
	tokens, err := c.verifier()
	if err != nil {
		return err
	}
	relayCfg := server.Config{
		PairTimeout:  c.PairTimeout,
		AckTimeout:   c.AckTimeout,
		DuplicateID:  server.DuplicatePolicy(c.DuplicateID),
		ResumeWindow: offIfZero(c.ResumeWindow),
		ReclaimCheck: offIfZero(c.ReclaimCheck),
		Tokens:       tokens,
		Logger:       log,
	}
	c.LimitFlags.apply(&relayCfg)
	node, err := c.ClusterFlags.join(ctx, &relayCfg, advertised(ln.Addr()), log)
	if err != nil {
		return err
	}
	defer node.leave(context.Background())
	hub, err := c.newHub(log, node)
	if err != nil {
		return err
	}
	defer hub.Close()
	relayCfg.Observer = node.observer(hub)
	svc, err := socketio.NewService(socketio.ServiceConfig{
		Relay:          relayCfg,
		PingInterval:   c.PingInterval,
		PingTimeout:    c.PingTimeout,
		AllowedOrigins: c.AllowedOrigins,
	})
	if err != nil {
		return err
	}
	if err := hub.Attach(svc); err != nil {
		return err
	}
	if err := node.start(ctx, svc); err != nil {
		return err
	}
	stopPprof, err := c.startPprof(log)
	if err != nil {
		return fmt.Errorf("--pprof-listen: %w", err)
	}
	defer stopPprof()
	tuneCtx, stopTuning := context.WithCancel(ctx)
	defer stopTuning()
	go c.MemoryFlags.apply(log).run(tuneCtx, tunePeriod)
	if c.IdleTrim > 0 {
		trimCtx, stopTrim := context.WithCancel(ctx)
		defer stopTrim()
		go newTrimmer(c.IdleTrim, svc.Relay.Activity, log).run(trimCtx)
	}
	scheme := "http"
	if c.TLSCert != "" {
		scheme = "https"
	}
	log.Info("p2pd serving", "addr", ln.Addr().String(), "scheme", scheme, "device_tokens", tokens != nil, "version", version.String())

	errc := make(chan error, 1)
	serving = true // Serve closes ln
	go func() {
		if c.TLSCert != "" {
			errc <- svc.ServeTLS(ln, c.TLSCert, c.TLSKey)
			return
		}
		errc <- svc.Serve(ln)
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "wait", c.ShutdownWait)
	sctx, cancel := context.WithTimeout(context.Background(), c.ShutdownWait)
	defer cancel()
	if err := svc.Shutdown(sctx); err != nil {
		log.Warn("shutdown incomplete", "err", err)
	}
	node.handOver(sctx, svc.Relay, c.ResumeWindow)
	if err := <-errc; err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// description is p2pd's help text.
const description = "The P2P relay: devices connect with an id, pair 1:1 and send events to their peer. " +
	"With no command, p2pd serves (the serve command)."

// serveSummary opens p2pd --help, above the serving flags.
const serveSummary = `The P2P relay: devices connect with an id, pair 1:1 and send events to their
peer. With no command, p2pd serves; these are its flags.`

// exitCodes ends p2pd's help.
const exitCodes = `Exit status: 0 after a clean stop (SIGINT or SIGTERM); 1 when it cannot start
or serve (the address is in use, an unusable token file or certificate); 2 for a
bad command line.`

// helpPrinter is kong's help, except that p2pd's own (p2pd --help) shows
// the serving flags, as serve is what p2pd does with no command, then the
// other commands and the exit codes.
func helpPrinter(options kong.HelpOptions, ctx *kong.Context) error {
	if ctx.Selected() != nil {
		if err := kong.DefaultHelpPrinter(options, ctx); err != nil {
			return err
		}
		if ctx.Selected().Name == "serve" {
			_, err := fmt.Fprintln(ctx.Stdout, "\n"+exitCodes)
			return err
		}
		return nil
	}
	var buf bytes.Buffer
	k := *ctx.Kong
	k.Stdout = &buf
	serve, err := kong.Trace(&k, []string{"serve"})
	if err != nil {
		return err
	}
	if err := kong.DefaultHelpPrinter(options, serve); err != nil {
		return err
	}
	usage, rest, _ := strings.Cut(buf.String(), "\n")
	usage = strings.Replace(usage, "p2pd serve", "p2pd [serve]", 1)
	_, err = fmt.Fprintf(ctx.Stdout, "%s\n%s\nOther commands:\n  token --id=ID    Print a device token (p2pd token --help).\n\n%s\n",
		usage, strings.Replace(rest, "Serve the relay (the default command).", serveSummary, 1), exitCodes)
	return err
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var cli CLI
	parser, err := kong.New(&cli,
		kong.Name("p2pd"),
		kong.Description(description),
		kong.Vars{"version": version.String()},
		kong.BindTo(ctx, (*context.Context)(nil)),
		kong.Help(helpPrinter),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, "p2pd:", err)
		os.Exit(1)
	}
	kctx, err := parser.Parse(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "p2pd: %v (see p2pd --help)\n", err)
		os.Exit(2)
	}
	if err := kctx.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "p2pd:", err)
		os.Exit(1)
	}
}

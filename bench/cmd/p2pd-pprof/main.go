// Command p2pd-pprof is p2pd for profiling under the benchmark: the relay
// and the admin side wired as p2pd wires them, with p2pd's defaults, plus
// net/http/pprof on a separate loopback listener when P2PD_PPROF names one.
// It takes only the flags the benchmark passes. p2pd itself has no pprof
// endpoint; once it honours P2PD_PPROF, profile the real binary instead.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alecthomas/kong"

	"github.com/p2prelay/p2prelay/admin"
	"github.com/p2prelay/p2prelay/server"
)

// CLI is the subset of p2pd's serve flags the benchmark uses.
type CLI struct {
	Listen       string        `help:"Address to listen on (host:port)." default:"127.0.0.1:9000"`
	AdminToken   string        `help:"Token of the admin side." required:""`
	PingInterval time.Duration `help:"Engine.IO heartbeat interval." default:"25s"`
	PingTimeout  time.Duration `help:"How long a device may miss heartbeats." default:"20s"`
	PairTimeout  time.Duration `help:"How long a target has to answer a pairing request." default:"10s"`
	AckTimeout   time.Duration `help:"How long a peer has to answer a relayed acknowledgement." default:"30s"`
	Rate         float64       `help:"Requests per second per device; 0 turns the limit off." default:"200"`
	Pprof        string        `help:"Loopback address to serve net/http/pprof on (host:port); empty for none." env:"P2PD_PPROF"`
}

// p2pdMaxDevices is p2pd's --max-devices default; the relay package's own
// default is no limit.
const p2pdMaxDevices = 50000

// Run serves until ctx ends.
func (c *CLI) Run(ctx context.Context) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	hub, err := admin.New(admin.Config{Token: c.AdminToken, Logger: log.With("component", "admin")})
	if err != nil {
		return err
	}
	defer hub.Close()
	rate := c.Rate
	if rate == 0 {
		rate = server.Unlimited
	}
	svc, err := server.NewService(server.ServiceConfig{
		Relay: server.Config{
			PairTimeout: c.PairTimeout,
			AckTimeout:  c.AckTimeout,
			Observer:    hub,
			Logger:      log,
			Rate:        rate,
			MaxDevices:  p2pdMaxDevices,
		},
		PingInterval: c.PingInterval,
		PingTimeout:  c.PingTimeout,
	})
	if err != nil {
		return err
	}
	if err := hub.Attach(svc); err != nil {
		return err
	}
	if c.Pprof != "" {
		if err := servePprof(ctx, c.Pprof, log); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.Listen, err)
	}
	log.Info("p2pd serving", "addr", ln.Addr().String(), "pprof", c.Pprof != "")
	errc := make(chan error, 1)
	go func() { errc <- svc.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := svc.Shutdown(sctx); err != nil {
		log.Warn("shutdown incomplete", "err", err)
	}
	return <-errc
}

// servePprof serves the pprof handlers on addr, which must be a loopback
// address, until ctx ends.
func servePprof(ctx context.Context, addr string, log *slog.Logger) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("P2PD_PPROF: %w", err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return errors.New("P2PD_PPROF must be a loopback address such as 127.0.0.1:6060")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("P2PD_PPROF: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	log.Info("pprof serving", "addr", ln.Addr().String())
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var cli CLI
	kctx := kong.Parse(&cli,
		kong.Name("p2pd-pprof"),
		kong.Description("p2pd with net/http/pprof, for profiling under the benchmark."),
		kong.BindTo(ctx, (*context.Context)(nil)),
	)
	if err := kctx.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "p2pd-pprof:", err)
		os.Exit(1)
	}
}

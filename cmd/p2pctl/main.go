// Command p2pctl is the relay's control center: a live terminal dashboard
// of devices and pairs, and subcommands for scripts.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/p2prelay/p2prelay/admin/adminclient"
	"github.com/p2prelay/p2prelay/internal/cmdline"
	"github.com/p2prelay/p2prelay/internal/tokenfile"
	"github.com/p2prelay/p2prelay/internal/version"
	"github.com/p2prelay/p2prelay/protocol"
)

// CLI is p2pctl's command line.
type CLI struct {
	Globals

	Dashboard DashboardCmd     `cmd:"" default:"withargs" help:"Open the live dashboard (the default command)."`
	Devices   DevicesCmd       `cmd:"" help:"List the connected devices."`
	Device    DeviceCmd        `cmd:"" help:"Print everything the relay knows of one device."`
	Pairs     PairsCmd         `cmd:"" help:"List the live pairs."`
	Nodes     NodesCmd         `cmd:"" help:"List the nodes of a cluster of relays (p2pd --redis): address, devices, messages a second, lease age."`
	Watch     WatchCmd         `cmd:"" help:"Print the relay's events as they happen, one per line; with --device, one device's traffic."`
	Kick      KickCmd          `cmd:"" help:"Disconnect a device."`
	Unpair    UnpairCmd        `cmd:"" help:"Break the pair a device is in."`
	Version   kong.VersionFlag `help:"Print the version and exit."`
}

// Globals are the flags every command takes.
type Globals struct {
	URL       string `help:"The relay's base URL." default:"http://127.0.0.1:9000" env:"P2PCTL_URL"`
	Token     string `help:"The relay's admin token (p2pd --admin-token). Without it, p2pctl reads --token-file." env:"P2PCTL_TOKEN"`
	TokenFile string `help:"File holding the admin token, read when no --token is given. Default: the file where p2pd on this machine keeps the token it generated, read only for a relay on this machine." env:"P2PCTL_TOKEN_FILE" placeholder:"FILE"`

	// Stderr receives what a command says besides its output.
	Stderr io.Writer `kong:"-"`
}

// client returns an admin client for the flags.
func (g *Globals) client() (*adminclient.Client, error) {
	tok, err := g.token()
	if err != nil {
		return nil, err
	}
	return adminclient.NewClient(adminclient.ClientConfig{URL: g.URL, Token: tok})
}

// token returns the admin token: --token, else the token file's. p2pd's
// own file is read only for a relay on this machine, lest its token go to
// another relay.
func (g *Globals) token() (string, error) {
	if g.Token != "" {
		return g.Token, nil
	}
	path := g.TokenFile
	if path == "" {
		if !onThisMachine(g.URL) {
			return "", protocol.Errorf(protocol.CodeUnauthorized, "no admin token: pass --token or set P2PCTL_TOKEN (the relay is not on this machine)")
		}
		var err error
		if path, err = tokenfile.DefaultPath(); err != nil {
			return "", protocol.Errorf(protocol.CodeUnauthorized, "no admin token: pass --token or set P2PCTL_TOKEN (%v)", err)
		}
	}
	tok, err := tokenfile.Read(path)
	switch {
	case err == nil:
		return tok, nil
	case errors.Is(err, fs.ErrNotExist) && g.TokenFile == "":
		return "", protocol.Errorf(protocol.CodeUnauthorized,
			"no admin token: pass --token or set P2PCTL_TOKEN; p2pd keeps the one it generates in %s, which is not there (is p2pd run by another user, or with --admin-token?)", path)
	}
	return "", protocol.Errorf(protocol.CodeUnauthorized, "no admin token: %v", err)
}

// onThisMachine reports whether a relay URL names a loopback address.
func onThisMachine(relayURL string) bool {
	u, err := url.Parse(relayURL)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// Exit codes besides 0 (success) and 1 (any other failure).
const (
	exitUsage        = 2 // the command line is wrong
	exitUnauthorized = 3 // the relay refused the token
	exitUnreachable  = 4 // the relay could not be reached
)

func exitCode(err error) int {
	switch {
	case protocol.CodeOf(err) == protocol.CodeUnauthorized:
		return exitUnauthorized
	case errors.Is(err, adminclient.ErrUnreachable):
		return exitUnreachable
	}
	return 1
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run parses args, runs the command and returns the exit code. Errors get
// one line on stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cli := CLI{Globals: Globals{Stderr: stderr}}
	parser, err := cmdline.New(&cli,
		kong.Name("p2pctl"),
		kong.Description("The p2prelay control center: a live dashboard of devices and pairs, and commands for scripts."),
		kong.Vars{"version": version.String()},
		kong.Writers(stdout, stderr),
		kong.Bind(&cli.Globals),
		kong.BindTo(ctx, (*context.Context)(nil)),
		kong.BindTo(stdout, (*io.Writer)(nil)),
	)
	if err != nil {
		fmt.Fprintln(stderr, "p2pctl:", err)
		return 1
	}
	kctx, status, exited, err := cmdline.Parse(parser, args)
	if exited {
		return status
	}
	if err != nil {
		fmt.Fprintln(stderr, "p2pctl: "+err.Error()+" (see p2pctl --help)")
		return exitUsage
	}
	if err := kctx.Run(); err != nil {
		fmt.Fprintln(stderr, "p2pctl: "+strings.ReplaceAll(err.Error(), "\n", " "))
		return exitCode(err)
	}
	return 0
}

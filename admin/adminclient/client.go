// Package adminclient is the Go client of a relay's admin side, as p2pctl
// uses it: the state and the commands over HTTP, and a Subscription to the
// admin stream over socket.io that reconnects by itself. Its types are
// package adminapi's; it uses the socket.io client, never the relay.
package adminclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	engine "github.com/zishang520/socket.io/clients/engine/v3"
	client "github.com/zishang520/socket.io/clients/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/p2prelay/p2prelay/admin/adminapi"
	"github.com/p2prelay/p2prelay/internal/sioclient"
	"github.com/p2prelay/p2prelay/protocol"
)

// ErrUnreachable wraps every failure to reach the relay at all (connection
// refused, DNS, timeouts), as opposed to the relay refusing a request.
var ErrUnreachable = errors.New("relay unreachable")

// ClientConfig configures a Client.
type ClientConfig struct {
	// URL is the relay's base URL, e.g. http://127.0.0.1:9000.
	URL string
	// Token is the admin token.
	Token string
	// Logger receives debug logs. Default: a logger that discards.
	Logger *slog.Logger
	// Timeout bounds connecting, one HTTP request and one command.
	// Default 10s.
	Timeout time.Duration
	// RetryMin and RetryMax bound the wait between reconnection attempts of
	// a Subscription (doubling from min to max). Defaults 250ms and 5s.
	RetryMin, RetryMax time.Duration
	// HTTPClient makes the HTTP requests. Default: a client with Timeout.
	HTTPClient *http.Client
}

// Client talks to a relay's admin side: the state over HTTP, the stream
// and the commands over socket.io. It is safe for concurrent use.
type Client struct {
	cfg    ClientConfig
	base   *url.URL // scheme://host, no path
	prefix string   // the URL's path, without a trailing slash
	log    *slog.Logger
	token  atomic.Pointer[string] // the admin token; SetToken replaces it
}

// NewClient returns a Client. It fails for a URL that is not http(s)://host
// or an empty token.
func NewClient(cfg ClientConfig) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("admin: relay URL %q: want http://host:port or https://host:port", cfg.URL)
	}
	if cfg.Token == "" {
		return nil, protocol.Errorf(protocol.CodeUnauthorized, "no admin token given")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 250 * time.Millisecond
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(5*time.Second, cfg.RetryMin)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: cfg.Timeout}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	prefix := strings.TrimSuffix(u.Path, "/")
	c := &Client{cfg: cfg, base: &url.URL{Scheme: u.Scheme, Host: u.Host}, prefix: prefix, log: cfg.Logger}
	c.token.Store(&cfg.Token)
	return c, nil
}

// SetToken replaces the admin token for the requests and connections that
// follow, as when an operator enters it again after the relay refused it.
func (c *Client) SetToken(tok string) { c.token.Store(&tok) }

func (c *Client) tok() string { return *c.token.Load() }

// Device fetches GET /admin/v1/devices/ID: what the relay knows of one
// device. A device that is not connected is an OFFLINE *protocol.Error.
func (c *Client) Device(ctx context.Context, id string) (*adminapi.DeviceDetail, error) {
	body, err := c.do(ctx, http.MethodGet, c.prefix+adminapi.DevicePath(id))
	if err != nil {
		return nil, err
	}
	var det adminapi.DeviceDetail
	if err := json.Unmarshal(body, &det); err != nil {
		return nil, fmt.Errorf("admin: decode device: %w", err)
	}
	return &det, nil
}

// State fetches GET /admin/v1/state.
func (c *Client) State(ctx context.Context) (*adminapi.Snapshot, error) {
	body, err := c.do(ctx, http.MethodGet, c.prefix+adminapi.PathState)
	if err != nil {
		return nil, err
	}
	var snap adminapi.Snapshot
	if err := json.Unmarshal(body, &snap); err != nil {
		return nil, fmt.Errorf("admin: decode state: %w", err)
	}
	return &snap, nil
}

// Kick disconnects a device (POST /admin/v1/devices/ID/kick).
func (c *Client) Kick(ctx context.Context, id string) error {
	return c.command(ctx, adminapi.CommandKick, id)
}

// Unpair breaks the pair device id is in
// (POST /admin/v1/devices/ID/unpair).
func (c *Client) Unpair(ctx context.Context, id string) error {
	return c.command(ctx, adminapi.CommandUnpair, id)
}

func (c *Client) command(ctx context.Context, name, id string) error {
	_, err := c.do(ctx, http.MethodPost, c.prefix+adminapi.CommandPath(id, name))
	return err
}

// do makes an admin HTTP request and returns the body of a 200 answer.
// Refusals come back as *protocol.Error, transport failures as
// ErrUnreachable.
func (c *Client) do(ctx context.Context, method, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, nil)
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.tok())
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the answer: %v", ErrUnreachable, err)
	}
	if resp.StatusCode == http.StatusOK {
		return body, nil
	}
	var payload struct {
		Error *protocol.Error `json:"error"`
	}
	if json.Unmarshal(body, &payload) == nil && payload.Error != nil && payload.Error.Code != "" {
		return nil, payload.Error
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return nil, protocol.Errorf(protocol.CodeUnauthorized, "the relay refused the admin token")
	}
	return nil, fmt.Errorf("relay answered %s (is %s a p2pd relay?)", resp.Status, c.base)
}

// maxAnswer bounds an HTTP answer: a state of a million devices fits.
const maxAnswer = 1 << 30

// inbound is one thing that happened on an admin connection.
type inbound struct {
	event   string          // "disconnect", or one of streamEvents
	payload json.RawMessage // the event's argument, undecoded (rawParser); nil when it came decoded
	ack     func([]any, error)
	err     error
}

// streamEvents are the events of the admin stream, decoded by the
// subscription itself.
var streamEvents = [...]string{adminapi.EventSnapshot, adminapi.EventDeltas, adminapi.EventDetail, adminapi.EventTraffic}

// conn is one socket.io connection to the admin namespace.
type conn struct {
	s      *client.Socket
	events chan inbound
	quit   chan struct{}
}

// dial connects to the admin namespace. A relay that cannot be reached
// fails at once with ErrUnreachable; a refused token with an UNAUTHORIZED
// *protocol.Error. The caller must call close.
func (c *Client) dial(ctx context.Context) (*conn, error) {
	if err := c.probe(ctx); err != nil {
		return nil, err
	}
	opts := client.DefaultOptions()
	opts.SetPath(c.prefix + "/socket.io")
	opts.SetAuth(map[string]any{adminapi.AuthToken: c.tok()})
	// The Go client can lose packets while upgrading from polling, so the
	// admin connection uses websocket alone.
	opts.SetTransports(types.NewSet[engine.TransportCtor](client.WebSocket))
	opts.SetParser(newRawParser(streamEvents[:]...))
	cn := &conn{events: make(chan inbound, 8), quit: make(chan struct{})}
	push := func(in inbound) {
		select {
		case cn.events <- in:
		case <-cn.quit:
		}
	}
	setup := func(s *client.Socket) {
		_ = s.On("disconnect", func(args ...any) {
			reason := "disconnected"
			if len(args) > 0 {
				reason = fmt.Sprint(args[0])
			}
			push(inbound{event: "disconnect", err: fmt.Errorf("%w: connection lost (%s)", ErrUnreachable, reason)})
		})
		for _, ev := range streamEvents {
			_ = s.On(types.EventName(ev), func(args ...any) {
				args, ack := protocol.SplitAck(args)
				in := inbound{event: ev, ack: ack, payload: json.RawMessage("null")}
				if len(args) > 0 {
					in.payload, _ = args[0].(json.RawMessage)
				}
				push(in)
			})
		}
	}
	cctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	s, err := sioclient.Connect(cctx, c.base.String(), sioclient.Options{Client: opts, Namespace: adminapi.NamespaceName, Setup: setup})
	if err != nil {
		close(cn.quit)
		return nil, connectError(err)
	}
	cn.s = s
	return cn, nil
}

// probe checks that something answers HTTP at the relay's address, so that
// a relay that is down is reported at once.
func (c *Client) probe(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.String()+c.prefix+"/healthz", nil)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return nil
}

func (cn *conn) close() {
	close(cn.quit)
	cn.s.Close()
}

// command sends a command and waits for its ack.
func (cn *conn) command(ctx context.Context, timeout time.Duration, name, id string) error {
	type answer struct {
		args []any
		err  error
	}
	res := make(chan answer, 1)
	if err := cn.s.Emit(name, id, func(args []any, err error) {
		select {
		case res <- answer{args, err}:
		default:
		}
	}); err != nil {
		return fmt.Errorf("admin: %s: %w", name, err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case a := <-res:
		if a.err != nil {
			// The connection ended before the relay answered.
			return fmt.Errorf("%w: no answer to %s: %v", ErrUnreachable, name, a.err)
		}
		if perr := protocol.ParseAckError(a.args); perr != nil {
			return perr
		}
		if !isOK(a.args) {
			return fmt.Errorf("admin: unexpected answer to %s: %v", name, a.args)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("%w: no answer to %s within %s", ErrUnreachable, name, timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// isOK recognises the {"ok": true} answer of a command.
func isOK(args []any) bool {
	if len(args) != 1 {
		return false
	}
	m, ok := args[0].(map[string]any)
	return ok && m["ok"] == true
}

// connectError turns a failed connection into an error: the relay's
// refusal (UNAUTHORIZED) as a *protocol.Error, anything else as
// ErrUnreachable.
func connectError(err error) error {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe
	}
	return fmt.Errorf("%w: %v", ErrUnreachable, err)
}

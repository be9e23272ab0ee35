package admin

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
	"time"

	engine "github.com/zishang520/socket.io/clients/engine/v3"
	client "github.com/zishang520/socket.io/clients/socket/v3"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

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
}

// NewClient returns a Client. It fails for a URL that is not http(s)://host
// or an empty token.
func NewClient(cfg ClientConfig) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("admin: relay URL %q: %w", cfg.URL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
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
	return &Client{cfg: cfg, base: &url.URL{Scheme: u.Scheme, Host: u.Host}, prefix: prefix, log: cfg.Logger}, nil
}

// State fetches GET /admin/v1/state.
func (c *Client) State(ctx context.Context) (*Snapshot, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.String()+c.prefix+PathState, nil)
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%w: reading the answer: %v", ErrUnreachable, err)
	}
	if resp.StatusCode != http.StatusOK {
		var payload struct {
			Error *protocol.Error `json:"error"`
		}
		if json.Unmarshal(body, &payload) == nil && payload.Error != nil && payload.Error.Code != "" {
			return nil, fmt.Errorf("relay answered %s: %w", resp.Status, payload.Error)
		}
		if resp.StatusCode == http.StatusUnauthorized {
			return nil, protocol.Errorf(protocol.CodeUnauthorized, "the relay refused the admin token")
		}
		return nil, fmt.Errorf("relay answered %s (is %s a p2pd relay?)", resp.Status, c.base)
	}
	var snap Snapshot
	if err := json.Unmarshal(body, &snap); err != nil {
		return nil, fmt.Errorf("admin: decode state: %w", err)
	}
	return &snap, nil
}

// Kick disconnects a device. It opens a command-only connection.
func (c *Client) Kick(ctx context.Context, id string) error {
	return c.oneCommand(ctx, CommandKick, id)
}

// Unpair breaks the pair device id is in. It opens a command-only
// connection.
func (c *Client) Unpair(ctx context.Context, id string) error {
	return c.oneCommand(ctx, CommandUnpair, id)
}

func (c *Client) oneCommand(ctx context.Context, name, id string) error {
	cn, err := c.open(false)
	if err != nil {
		return err
	}
	defer cn.close()
	if err := cn.waitConnected(ctx, c.cfg.Timeout); err != nil {
		return err
	}
	return cn.command(ctx, c.cfg.Timeout, name, id)
}

// inbound is one thing that happened on an admin connection.
type inbound struct {
	event   string // "connect", "connect_error", "disconnect", EventSnapshot, EventDeltas
	payload any
	ack     socket.Ack
	err     error
}

// conn is one socket.io connection to the admin namespace.
type conn struct {
	s      *client.Socket
	events chan inbound
	quit   chan struct{}
}

// open starts connecting to the admin namespace; stream says whether the
// relay should send the stream. The caller must call close.
func (c *Client) open(stream bool) (*conn, error) {
	opts := client.DefaultOptions()
	opts.SetForceNew(true)
	opts.SetReconnection(false)
	opts.SetTimeout(c.cfg.Timeout)
	opts.SetPath(c.prefix + "/socket.io")
	opts.SetAuth(map[string]any{AuthToken: c.cfg.Token, AuthStream: stream})
	opts.SetTransports(types.NewSet[engine.TransportCtor](client.Polling, client.WebSocket))
	s, err := client.Connect(c.base.String()+NamespaceName, opts)
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	cn := &conn{s: s, events: make(chan inbound, 8), quit: make(chan struct{})}
	push := func(in inbound) {
		select {
		case cn.events <- in:
		case <-cn.quit:
		}
	}
	_ = s.On("connect", func(...any) { push(inbound{event: "connect"}) })
	_ = s.On("connect_error", func(args ...any) { push(inbound{event: "connect_error", err: connectError(args)}) })
	_ = s.On("disconnect", func(args ...any) {
		reason := "disconnected"
		if len(args) > 0 {
			reason = fmt.Sprint(args[0])
		}
		push(inbound{event: "disconnect", err: fmt.Errorf("%w: connection lost (%s)", ErrUnreachable, reason)})
	})
	for _, ev := range [...]string{EventSnapshot, EventDeltas} {
		_ = s.On(types.EventName(ev), func(args ...any) {
			in := inbound{event: ev}
			if n := len(args); n > 0 {
				if fn, ok := args[n-1].(socket.Ack); ok {
					in.ack = fn
					args = args[:n-1]
				}
			}
			if len(args) > 0 {
				in.payload = args[0]
			}
			push(in)
		})
	}
	return cn, nil
}

func (cn *conn) close() {
	close(cn.quit)
	cn.s.Close()
}

// waitConnected waits until the relay accepted the connection.
func (cn *conn) waitConnected(ctx context.Context, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case in := <-cn.events:
			switch in.event {
			case "connect":
				return nil
			case "connect_error", "disconnect":
				return in.err
			}
		case <-t.C:
			return fmt.Errorf("%w: no answer within %s", ErrUnreachable, timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// command sends a command and waits for its ack.
func (cn *conn) command(ctx context.Context, timeout time.Duration, name, id string) error {
	res := make(chan []any, 1)
	if err := cn.s.Emit(name, id, socket.Ack(func(args []any, _ error) {
		select {
		case res <- args:
		default:
		}
	})); err != nil {
		return fmt.Errorf("admin: %s: %w", name, err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case args := <-res:
		if perr := protocol.ParseAckError(args); perr != nil {
			return perr
		}
		return nil
	case <-t.C:
		return fmt.Errorf("%w: no answer to %s within %s", ErrUnreachable, name, timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// connectError turns a connect_error's argument into an error: the relay's
// refusal (UNAUTHORIZED) as a *protocol.Error, anything else as
// ErrUnreachable.
func connectError(args []any) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: connection failed", ErrUnreachable)
	}
	err, ok := args[0].(error)
	if !ok {
		return fmt.Errorf("%w: %v", ErrUnreachable, args[0])
	}
	var xe *types.ExtendedError
	if errors.As(err, &xe) {
		if data, ok := xe.Data.(map[string]any); ok {
			if code, _ := data["code"].(string); code != "" {
				msg, _ := data["message"].(string)
				return &protocol.Error{Code: protocol.Code(code), Message: msg}
			}
		}
		if pe := protocol.ParseServerError(xe.Message); pe.Code != "" {
			return pe
		}
	}
	return fmt.Errorf("%w: %v", ErrUnreachable, err)
}

package socketio

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/p2prelay/p2prelay/server"
)

// ServiceConfig configures a Service: the relay and its socket.io server.
type ServiceConfig struct {
	Relay server.Config
	// PingInterval and PingTimeout are Engine.IO's heartbeat; zero keeps
	// the library defaults (25s and 20s).
	PingInterval time.Duration
	PingTimeout  time.Duration
	// MaxHTTPBufferSize bounds one Engine.IO message, in bytes; zero keeps
	// the library default (1 MB).
	MaxHTTPBufferSize int64
	// JoinTimeout is how long a new connection has to join (a device to be
	// taken under its id) before it is closed; zero: DefaultJoinTimeout.
	JoinTimeout time.Duration
	// HTTPTimeout bounds how long an HTTP connection may take to send a
	// request's headers, and how long one may stay idle between requests;
	// zero: DefaultHTTPTimeout.
	HTTPTimeout time.Duration
	// AllowedOrigins, when set, restricts browsers to these origins (CORS,
	// and a handshake whose Origin header is not listed is refused).
	// Clients that send no Origin, such as devices outside a browser, are
	// not affected. "*" allows any origin.
	AllowedOrigins []string
	// Options, when set, are used as the socket.io server options instead
	// of NewSocketServerOptions; the fields above are applied on top.
	Options *socket.ServerOptions
}

// Defaults of ServiceConfig's deadlines.
const (
	// DefaultJoinTimeout covers a handshake, a round trip and the check of
	// an id's live holder (server.DefaultReclaimCheck). The socket.io
	// library's own default is 45 s.
	DefaultJoinTimeout = 5 * time.Second
	// DefaultHTTPTimeout is for an HTTP request's headers and for an idle
	// keep-alive connection (net/http keeps one forever by default).
	DefaultHTTPTimeout = 10 * time.Second
)

// Service is a relay served over HTTP: socket.io at /socket.io/ and a health
// check at /healthz. Create it with NewService, add more handlers with
// Handle, then Serve; Shutdown stops it.
type Service struct {
	Relay *server.Relay
	IO    *socket.Server

	mux      *http.ServeMux
	srv      *http.Server
	serving  atomic.Bool
	stopping atomic.Bool
	down     atomic.Bool // SetAvailable(false)
	once     sync.Once
}

// NewService builds a relay and its socket.io server.
func NewService(cfg ServiceConfig) (*Service, error) {
	opts := cfg.Options
	if opts == nil {
		opts = NewSocketServerOptions()
	}
	if cfg.PingInterval > 0 {
		opts.SetPingInterval(cfg.PingInterval)
	}
	if cfg.PingTimeout > 0 {
		opts.SetPingTimeout(cfg.PingTimeout)
	}
	maxPayload := cfg.Relay.MaxPayload
	if maxPayload == 0 {
		maxPayload = server.DefaultMaxPayload
	}
	if cfg.MaxHTTPBufferSize > 0 {
		opts.SetMaxHttpBufferSize(cfg.MaxHTTPBufferSize)
	} else if maxPayload > 0 {
		// Room for a message a little over the limit to reach the relay,
		// which refuses it with TOO_LARGE; far larger ones close the
		// transport.
		opts.SetMaxHttpBufferSize(2*int64(maxPayload) + 64<<10)
	}
	if len(cfg.AllowedOrigins) > 0 {
		restrictOrigins(opts, cfg.AllowedOrigins)
	}
	if cfg.JoinTimeout > 0 {
		opts.SetConnectTimeout(cfg.JoinTimeout)
	}
	io, handler := NewSocketServer(opts)
	relay, err := Attach(io, cfg.Relay)
	if err != nil {
		return nil, err
	}
	s := &Service{Relay: relay, IO: io, mux: http.NewServeMux()}
	s.mux.Handle("/socket.io/", s.refuseNewWhileStopping(detachOnHijack(handler)))
	s.mux.HandleFunc("GET /healthz", s.healthz)
	httpTimeout := cfg.HTTPTimeout
	if httpTimeout <= 0 {
		httpTimeout = DefaultHTTPTimeout
	}
	s.srv = &http.Server{Handler: s.mux, ReadHeaderTimeout: httpTimeout, IdleTimeout: httpTimeout}
	return s, nil
}

// refuseNewWhileStopping answers 503 to a new Engine.IO connection (a
// request without a session id) once Shutdown has begun, while the
// connections already open drain. Devices that were told to go reconnect
// at once: refused at the transport, socket.io clients try again later (to
// this relay once it is back, or through a load balancer to another);
// refused at the namespace, with SHUTTING_DOWN, socket.io-client 4 would
// give up for good.
func (s *Service) refuseNewWhileStopping(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (s.stopping.Load() || s.down.Load()) && !r.URL.Query().Has("sid") {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "the relay is restarting\n", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// restrictOrigins sets CORS for the allowed origins and refuses handshakes
// from other browser origins.
func restrictOrigins(opts *socket.ServerOptions, origins []string) {
	allowed := make(map[string]bool, len(origins))
	for _, o := range origins {
		allowed[strings.TrimRight(o, "/")] = true
	}
	if allowed["*"] {
		opts.SetCors(&types.Cors{Origin: "*"})
		return
	}
	// One test for both: CORS headers, and the refusal of the handshake.
	isAllowed := func(origin string) bool { return allowed[origin] }
	opts.SetCors(&types.Cors{Origin: isAllowed, Credentials: true})
	allowRequest(opts, func(ctx *types.HttpContext) error {
		origin := ctx.Headers().Peek("Origin")
		if origin == "" || isAllowed(origin) {
			return nil
		}
		return fmt.Errorf("origin %q is not allowed", origin)
	})
}

// SetAvailable says whether the service may take new devices: a cluster
// node that cannot reach the cluster's state sets it false, and /healthz
// turns 503 and new connections are refused at the transport (so devices
// and load balancers try another node) until it is true again.
func (s *Service) SetAvailable(ok bool) { s.down.Store(!ok) }

// Handle adds an HTTP handler beside the relay (admin API, metrics). Call it
// before Serve.
func (s *Service) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Handler returns the service's HTTP handler, for callers that run their
// own http.Server.
func (s *Service) Handler() http.Handler { return s.mux }

func (s *Service) healthz(w http.ResponseWriter, _ *http.Request) {
	if !s.serving.Load() {
		http.Error(w, "not serving\n", http.StatusServiceUnavailable)
		return
	}
	if s.down.Load() {
		http.Error(w, "unavailable: cannot reach the cluster\n", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = fmt.Fprintln(w, "ok")
}

// Serve accepts connections on ln until Shutdown. It returns nil after a
// clean shutdown.
func (s *Service) Serve(ln net.Listener) error {
	s.serving.Store(true)
	err := s.srv.Serve(coalescingListener{ln})
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// ServeTLS is Serve over TLS with the given certificate and key files.
func (s *Service) ServeTLS(ln net.Listener, certFile, keyFile string) error {
	s.serving.Store(true)
	err := s.srv.ServeTLS(coalescingListener{ln}, certFile, keyFile)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// drainWait bounds how long Shutdown waits for devices to close their
// transports after being told to go, before it closes the rest: by then
// the relay has closed the transports of the devices it disconnected.
const drainWait = closeGrace

// awaitClients waits until no Engine.IO client is left, ctx ends, or max
// passes. Devices close their own transports once told, which lets the last
// packets (P2P_DISCONNECT, SERVER_ERROR) reach them.
func (s *Service) awaitClients(ctx context.Context, max time.Duration) {
	deadline := time.NewTimer(max)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for s.IO.Engine().ClientsCount() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-tick.C:
		}
	}
}

// Shutdown stops the service: /healthz turns 503 and new connections are
// refused, the relay tells paired devices and closes every connection so
// that devices reconnect by themselves, then the HTTP server stops. It
// returns when done or when ctx ends.
func (s *Service) Shutdown(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		s.serving.Store(false)
		s.stopping.Store(true)
		err = s.Relay.Shutdown(ctx)
		s.awaitClients(ctx, drainWait)
		s.IO.Close(nil)
		if herr := s.srv.Shutdown(ctx); herr != nil && err == nil {
			err = herr
		}
	})
	return err
}

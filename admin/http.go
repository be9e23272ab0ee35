package admin

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/p2prelay/p2prelay/admin/adminapi"
	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server/socketio"
)

// Where Attach serves the admin side. The paths a client uses are defined
// in package adminapi; they are repeated here to list the hub's surface.
const (
	PathState     = adminapi.PathState
	PathCommand   = adminapi.PathCommand
	PathDevice    = adminapi.PathDevice
	PathMetrics   = "/metrics"
	NamespaceName = adminapi.NamespaceName
)

// Where a wrong token was presented, for the auth-failure metric.
const (
	surfaceSocket = iota
	surfaceHTTP
	surfaceCount
)

// surfaceNames label the surfaces in metrics and logs.
var surfaceNames = [surfaceCount]string{"socket", "http"}

// Attach binds the hub to a relay service and serves the admin side
// beside the relay, as p2pd does: the /admin namespace, GET
// /admin/v1/state, GET /admin/v1/devices/{id}, POST
// /admin/v1/devices/{id}/{kick|unpair} and GET /metrics. The hub must be the service's observer (server.Config.Observer).
// Call it before the service serves.
func (h *Hub) Attach(svc *socketio.Service) error {
	h.Start(svc.Relay)
	if err := h.Mount(svc.IO.Of(NamespaceName, nil)); err != nil {
		return err
	}
	svc.Handle("GET "+PathState, h.StateHandler())
	svc.Handle("GET "+PathDevice, h.DeviceHandler())
	svc.Handle("POST "+PathCommand, h.CommandHandler())
	svc.Handle("GET "+PathMetrics, h.MetricsHandler())
	return nil
}

// StateHandler serves GET /admin/v1/state: the snapshot as JSON,
// {"seq", "time", "devices": [...], "pairs": [...], "stats": {...}}. It
// requires the admin token as "Authorization: Bearer TOKEN".
func (h *Hub) StateHandler() http.Handler {
	return h.requireToken(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, protocol.Errorf(protocol.CodeBadRequest, "use GET"))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(h.Snapshot())
	}))
}

// DeviceHandler serves GET /admin/v1/devices/{id}: what the relay knows of
// one device (adminapi.DeviceDetail) as JSON, or {"error": {"code",
// "message"}} with 400 (BAD_ID) or 404 (OFFLINE: no such device). It
// requires the admin token, as StateHandler does.
func (h *Hub) DeviceHandler() http.Handler {
	return h.requireToken(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, protocol.Errorf(protocol.CodeBadRequest, "use GET"))
			return
		}
		det, err := h.Detail(r.PathValue("id"))
		if err != nil {
			pe := protocol.AsError(err)
			writeError(w, commandStatus(pe.Code), pe)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(det)
	}))
}

// CommandHandler serves the operator's commands for scripts, mounted on
// "POST "+PathCommand: kick disconnects device {id}, unpair breaks its
// pair. It answers {"ok": true}, or {"error": {"code", "message"}} with 400
// (bad id or command), 404 (OFFLINE: no such device) or 409 (NOT_PAIRED).
// It requires the admin token, as StateHandler does.
func (h *Hub) CommandHandler() http.Handler {
	return h.requireToken(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			writeError(w, http.StatusMethodNotAllowed, protocol.Errorf(protocol.CodeBadRequest, "use POST"))
			return
		}
		id := r.PathValue("id")
		var err error
		switch cmd := r.PathValue("command"); cmd {
		case adminapi.CommandKick:
			err = h.Kick(id, r.RemoteAddr)
		case adminapi.CommandUnpair:
			err = h.Unpair(id, r.RemoteAddr)
		default:
			err = protocol.Errorf(protocol.CodeBadRequest, "unknown command %q: use kick or unpair", cmd)
		}
		if err != nil {
			pe := protocol.AsError(err)
			writeError(w, commandStatus(pe.Code), pe)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`+"\n")
	}))
}

// commandStatus is the HTTP status of a refused command.
func commandStatus(c protocol.Code) int {
	switch c {
	case protocol.CodeOffline:
		return http.StatusNotFound
	case protocol.CodeNotPaired:
		return http.StatusConflict
	case protocol.CodeShuttingDown:
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

// MetricsHandler serves the Prometheus metrics. Unless Config.MetricsOpen
// is set it requires the admin token, as StateHandler does.
func (h *Hub) MetricsHandler() http.Handler {
	hh := promhttp.HandlerFor(h.reg, promhttp.HandlerOpts{Registry: h.regr})
	if h.cfg.MetricsOpen {
		return hh
	}
	return h.requireToken(hh)
}

// requireToken answers 401 unless the request carries the admin token as a
// bearer token, and 429 (with Retry-After) while the address has presented
// too many wrong tokens (Config.AuthFailureRate).
func (h *Hub) requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearer(r.Header.Get("Authorization"))
		if err := h.authenticate(r.RemoteAddr, surfaceHTTP, tok, ok); err != nil {
			if err.Code == protocol.CodeRateLimited {
				w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(err.retry.Seconds()))))
				writeError(w, http.StatusTooManyRequests, err.Error)
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="p2pd admin"`)
			writeError(w, http.StatusUnauthorized, err.Error)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authError is a refused admin token, with how long to wait before the
// next attempt when the address is throttled.
type authError struct {
	*protocol.Error
	retry time.Duration
}

// authenticate checks a token presented from addr on a surface (given says
// whether there was one at all): nil when it is the admin token, else
// UNAUTHORIZED, or RATE_LIMITED while addr is over its budget of wrong
// tokens, whose attempts are refused without looking at the token.
func (h *Hub) authenticate(addr string, surface int, tok string, given bool) *authError {
	now := h.cfg.Now()
	if retry, ok := h.auth.admit(addr, surface, now); !ok {
		h.authThrottled[surface].Add(1)
		return &authError{Error: protocol.Errorf(protocol.CodeRateLimited,
			"too many wrong admin tokens from this address; try again in %s", retry.Round(time.Second)), retry: retry}
	}
	if given && h.token.matches(tok) {
		return nil
	}
	h.authFailures[surface].Add(1)
	reason := "wrong admin token"
	if !given {
		reason = "no admin token: " + noTokenHint[surface]
	}
	h.auth.refused(addr, surface, reason, given, now)
	return &authError{Error: protocol.Errorf(protocol.CodeUnauthorized, "%s", reason)}
}

// noTokenHint says, by surface, how to give the admin token.
var noTokenHint = [surfaceCount]string{"give it in the handshake auth as {token}", "send Authorization: Bearer TOKEN"}

// bearer extracts the token of an "Authorization: Bearer TOKEN" header.
func bearer(header string) (string, bool) {
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// writeError answers {"error": {"code", "message"}} with status.
func writeError(w http.ResponseWriter, status int, err *protocol.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(err.AckPayload())
}

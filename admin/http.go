package admin

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"

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
	PathMetrics   = "/metrics"
	NamespaceName = adminapi.NamespaceName
)

// Where a wrong token was presented, for the auth-failure metric.
const (
	surfaceSocket = iota
	surfaceHTTP
)

// Attach binds the hub to a relay service and serves the admin side
// beside the relay, as p2pd does: the /admin namespace, GET
// /admin/v1/state, POST /admin/v1/devices/{id}/{kick|unpair} and GET
// /metrics. The hub must be the service's observer (server.Config.Observer).
// Call it before the service serves.
func (h *Hub) Attach(svc *socketio.Service) error {
	h.Start(svc.Relay)
	if err := h.Mount(svc.IO.Of(NamespaceName, nil)); err != nil {
		return err
	}
	svc.Handle("GET "+PathState, h.StateHandler())
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
	hh := promhttp.HandlerFor(h.reg, promhttp.HandlerOpts{Registry: h.reg})
	if h.cfg.MetricsOpen {
		return hh
	}
	return h.requireToken(hh)
}

// requireToken answers 401 unless the request carries the admin token as a
// bearer token.
func (h *Hub) requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearer(r.Header.Get("Authorization"))
		if !ok || !h.token.matches(tok) {
			h.authFailures[surfaceHTTP].Add(1)
			reason := "wrong admin token"
			if !ok {
				reason = "no admin token: send Authorization: Bearer TOKEN"
			}
			h.log.Warn("admin request refused", "addr", r.RemoteAddr, "path", r.URL.Path, "reason", reason)
			w.Header().Set("WWW-Authenticate", `Bearer realm="p2pd admin"`)
			writeError(w, http.StatusUnauthorized, protocol.Errorf(protocol.CodeUnauthorized, "%s", reason))
			return
		}
		next.ServeHTTP(w, r)
	})
}

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

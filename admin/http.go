package admin

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/p2prelay/p2prelay/protocol"
)

// HTTP paths of the admin side, as p2pd mounts them.
const (
	PathState     = "/admin/v1/state"
	PathMetrics   = "/metrics"
	NamespaceName = "/admin"
)

// Where a wrong token was presented, for the auth-failure metric.
const (
	surfaceSocket = iota
	surfaceHTTP
)

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

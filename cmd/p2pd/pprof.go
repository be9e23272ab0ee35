package main

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// DebugFlags configure the profiling endpoint.
type DebugFlags struct {
	PprofListen string `help:"Serve Go's pprof profiles on this address (e.g. 127.0.0.1:6060); off when empty. Keep it on a private address." env:"P2PD_PPROF_LISTEN"`
}

// startPprof serves net/http/pprof on its own listener until the returned
// stop function is called.
func (f DebugFlags) startPprof(log *slog.Logger) (stop func(), err error) {
	if f.PprofListen == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", f.PprofListen)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("pprof server stopped", "err", err)
		}
	}()
	log.Info("serving pprof", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}

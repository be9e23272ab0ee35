package socketio_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/p2prelay/p2prelay/server"
	"github.com/p2prelay/p2prelay/server/socketio"
)

// The relay as a plugin on a socket.io server of your own, as in the README.
func ExampleAttach() {
	// A socket.io server that accepts both client generations (Engine.IO 3 and 4).
	io, handler := socketio.NewSocketServer(socketio.NewSocketServerOptions())
	relay, err := socketio.Attach(io, server.Config{
		PairTimeout: 10 * time.Second,
		Logger:      slog.Default(),
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", handler)
	mux.HandleFunc("/devices", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(relay.Devices())
	})
	_ = &http.Server{Addr: ":9000", Handler: mux} // then ListenAndServe
}

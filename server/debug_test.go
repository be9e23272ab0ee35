package server_test

import (
	"os"

	siolog "github.com/zishang520/socket.io/v3/pkg/log"
)

// SIODEBUG=1 DEBUG='socket.io:*' go test ./server/ turns on the socket.io
// library's own debug output, for chasing wire-level problems.
func init() {
	if os.Getenv("SIODEBUG") != "" {
		siolog.DEBUG.Store(true)
	}
}

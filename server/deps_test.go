package server_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCoreImportsNoSocketIO keeps the relay core free of the socket.io
// library: only server/socketio may import it.
func TestCoreImportsNoSocketIO(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/p2prelay/p2prelay/server").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.Contains(pkg, "socket.io") || strings.HasSuffix(pkg, "/server/socketio") {
			t.Errorf("package server depends on %s", pkg)
		}
	}
}

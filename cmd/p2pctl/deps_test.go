package main

import (
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const (
	module       = "github.com/p2prelay/p2prelay/"
	socketIO     = "github.com/zishang520/socket.io/"
	socketServer = socketIO + "servers/"
)

// imports lists the packages pkg builds from, each with what it imports,
// as `go list -deps` reports them.
func imports(t *testing.T, pkg string) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", pkg).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list %s: %v\n%s", pkg, err, ee.Stderr)
		}
		t.Fatalf("go list %s: %v", pkg, err)
	}
	deps := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		deps[f[0]] = f[1:]
	}
	return deps
}

// TestControlCenterBuildsWithoutTheRelay: the dashboard and p2pctl never
// build the relay core or the hub, so that a change to either cannot break
// them. The dashboard needs no socket.io at all. p2pctl's admin client uses
// the socket.io client library, which itself imports parts of the
// socket.io server library; none of p2prelay's own packages may.
func TestControlCenterBuildsWithoutTheRelay(t *testing.T) {
	forbidden := []string{module + "server", module + "admin"}
	for _, pkg := range []string{module + "tui", module + "cmd/p2pctl"} {
		deps := imports(t, pkg)
		for _, f := range forbidden {
			if _, ok := deps[f]; ok {
				t.Errorf("%s builds %s", pkg, f)
			}
		}
		for _, p := range slices.Sorted(maps.Keys(deps)) {
			if pkg == module+"tui" && strings.HasPrefix(p, socketIO) {
				t.Errorf("the dashboard builds %s", p)
			}
			if !strings.HasPrefix(p, module) {
				continue
			}
			for _, imp := range deps[p] {
				if strings.HasPrefix(imp, socketServer) {
					t.Errorf("%s (built by %s) imports the socket.io server library: %s", p, pkg, imp)
				}
			}
		}
	}
}

package cmdline

import (
	"bytes"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

type grammar struct {
	Name    string           `help:"A name." required:""`
	Version kong.VersionFlag `help:"Print the version and exit."`
}

func parse(t *testing.T, args ...string) (*kong.Context, int, bool, error, string) {
	t.Helper()
	var g grammar
	var out bytes.Buffer
	p, err := New(&g, kong.Name("tool"), kong.Vars{"version": "v1.2.3"}, kong.Writers(&out, &out))
	if err != nil {
		t.Fatal(err)
	}
	kctx, status, exited, err := Parse(p, args)
	return kctx, status, exited, err, out.String()
}

func TestParse(t *testing.T) {
	if kctx, status, exited, err, _ := parse(t, "--name", "x"); err != nil || exited || status != 0 || kctx == nil {
		t.Fatalf("a good command line: %v %d %v %v", kctx, status, exited, err)
	}
	if _, status, exited, err, out := parse(t, "--help"); err != nil || !exited || status != 0 || !strings.Contains(out, "--name") {
		t.Fatalf("--help: status %d, exited %v, err %v, printed %q", status, exited, err, out)
	}
	if _, status, exited, err, out := parse(t, "--version"); err != nil || !exited || status != 0 || !strings.Contains(out, "v1.2.3") {
		t.Fatalf("--version: status %d, exited %v, err %v, printed %q", status, exited, err, out)
	}
	if _, _, exited, err, _ := parse(t, "--bogus"); err == nil || exited {
		t.Fatalf("a bad command line: exited %v, err %v", exited, err)
	}
}

package tokenfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

func TestLoadOrCreateKeepsOneToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "p2pd", FileName)
	n := 0
	gen := func() (string, error) { n++; return fmt.Sprintf("p2pa_token-%d", n), nil }
	tok, created, err := LoadOrCreate(path, gen)
	if err != nil || !created || tok != "p2pa_token-1" {
		t.Fatalf("first: %q %v %v", tok, created, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v, %v", fi.Mode(), err)
	}
	if di, err := os.Stat(filepath.Dir(path)); err != nil || di.Mode().Perm() != 0o700 {
		t.Fatalf("folder mode %v, %v", di.Mode(), err)
	}
	tok, created, err = LoadOrCreate(path, gen)
	if err != nil || created || tok != "p2pa_token-1" || n != 1 {
		t.Fatalf("second: %q %v %v (generated %d)", tok, created, err, n)
	}
	if got, err := Read(path); err != nil || got != tok {
		t.Fatalf("Read = %q, %v", got, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
}

func TestLoadOrCreateRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	var n atomic.Int64
	var wg sync.WaitGroup
	toks := make([]string, 8)
	for i := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, _, err := LoadOrCreate(path, func() (string, error) { return fmt.Sprintf("p2pa_%d", n.Add(1)), nil })
			if err != nil {
				t.Error(err)
			}
			toks[i] = tok
		}()
	}
	wg.Wait()
	for _, tok := range toks {
		if tok != toks[0] {
			t.Fatalf("processes starting at once got different tokens: %v", toks)
		}
	}
}

func TestReadRefuses(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if _, err := Read(write("open", "p2pa_x\n", 0o644)); !errors.Is(err, ErrExposed) {
		t.Errorf("a file others may read: %v", err)
	}
	if _, err := Read(write("empty", "\n", 0o600)); err == nil {
		t.Error("an empty file was read")
	}
	if _, err := Read(filepath.Join(dir, "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: %v", err)
	}
	if _, _, err := LoadOrCreate(write("open2", "p2pa_x", 0o640), func() (string, error) { return "new", nil }); !errors.Is(err, ErrExposed) {
		t.Errorf("LoadOrCreate over an exposed file: %v", err)
	}
}

func TestDefaultDir(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/var/tmp/xdg")
	if d, _ := DefaultDir(); d != "/var/tmp/xdg/p2pd" {
		t.Errorf("with XDG_STATE_HOME: %s", d)
	}
	t.Setenv("XDG_STATE_HOME", "relative/ignored")
	t.Setenv("HOME", "/home/op")
	if d, _ := DefaultDir(); d != "/home/op/.local/state/p2pd" {
		t.Errorf("without: %s", d)
	}
	if p, _ := DefaultPath(); p != "/home/op/.local/state/p2pd/admin-token" {
		t.Errorf("DefaultPath = %s", p)
	}
}

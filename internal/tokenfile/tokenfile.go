// Package tokenfile keeps the admin token p2pd generates in a file that
// only its user can read, so that p2pd uses it again on its next start and
// p2pctl on the same machine finds it without being told.
//
// The file holds the token on one line. It lives by default in the user's
// state folder: $XDG_STATE_HOME/p2pd/admin-token, else
// ~/.local/state/p2pd/admin-token.
package tokenfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// FileName is the token file's name in the state folder.
const FileName = "admin-token"

// maxSize bounds what Read takes in: a token, not a file someone pointed it at.
const maxSize = 4096

// DefaultDir returns p2pd's per-user state folder: $XDG_STATE_HOME/p2pd
// when XDG_STATE_HOME is an absolute path, else ~/.local/state/p2pd.
func DefaultDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "p2pd"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no state folder for the admin token: %w", err)
	}
	return filepath.Join(home, ".local", "state", "p2pd"), nil
}

// DefaultPath returns the token file in DefaultDir.
func DefaultPath() (string, error) {
	dir, err := DefaultDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, FileName), nil
}

// ErrExposed is returned for a token file that users other than its owner
// may read or write.
var ErrExposed = errors.New("others than its owner may read or write it")

// Read returns the token kept in path. A missing file is an error that
// errors.Is(err, fs.ErrNotExist) recognises; a file others may read or
// write is refused (ErrExposed), as is an empty one.
func Read(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("admin token file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return "", fmt.Errorf("admin token file %s: %w (mode %04o); chmod 600 it, or remove it for a new token", path, ErrExposed, perm)
	}
	buf := make([]byte, maxSize+1)
	n, err := f.Read(buf)
	if err != nil && n == 0 {
		return "", fmt.Errorf("admin token file %s is empty", path)
	}
	if n > maxSize {
		return "", fmt.Errorf("admin token file %s is larger than a token", path)
	}
	tok := strings.TrimSpace(string(buf[:n]))
	if tok == "" {
		return "", fmt.Errorf("admin token file %s is empty", path)
	}
	return tok, nil
}

// LoadOrCreate returns the token kept in path; when there is none, it keeps
// a new one from generate there (created is then true), creating the
// folder only its user may open. Two processes that start at once end
// with the same token: the file appears whole, once.
func LoadOrCreate(path string, generate func() (string, error)) (tok string, created bool, err error) {
	tok, err = Read(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return tok, false, err
	}
	if tok, err = generate(); err != nil {
		return "", false, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", false, fmt.Errorf("keep the admin token: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*") // mode 0600
	if err != nil {
		return "", false, fmt.Errorf("keep the admin token: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	_, werr := tmp.WriteString(tok + "\n")
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return "", false, fmt.Errorf("keep the admin token in %s: %w", path, werr)
	}
	// A hard link appears whole and fails if the file exists meanwhile.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			tok, err = Read(path) // another process was first: its token
			return tok, false, err
		}
		return "", false, fmt.Errorf("keep the admin token in %s: %w", path, err)
	}
	return tok, true, nil
}

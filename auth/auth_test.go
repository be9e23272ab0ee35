package auth

import (
	"strings"
	"testing"
	"time"

	"github.com/p2prelay/p2prelay/protocol"
)

const secret = "0123456789abcdef-secret"

func TestMintVerify(t *testing.T) {
	v, err := NewVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, err := Mint(secret, "dev-1", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if exp, err := v.Verify(tok, "dev-1"); err != nil || exp.Unix() != now.Add(time.Hour).Unix() {
		t.Fatalf("valid token: expires %v, %v", exp, err)
	}
	for _, tc := range []struct{ token, id, want string }{
		{"", "dev-1", "required"},
		{tok, "dev-2", "another device"},
		{tok[:len(tok)-2] + "xx", "dev-1", "signature"},
		{"a.b.c", "dev-1", "malformed"},
		{strings.Repeat("x", 5000), "dev-1", "malformed"},
	} {
		_, err := v.Verify(tc.token, tc.id)
		if protocol.CodeOf(err) != protocol.CodeUnauthorized || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Verify(%.20q, %q) = %v, want UNAUTHORIZED mentioning %q", tc.token, tc.id, err, tc.want)
		}
	}
	old, _ := Mint(secret, "dev-1", time.Minute, time.Now().Add(-time.Hour))
	if _, err := v.Verify(old, "dev-1"); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired token: %v", err)
	}
}

func TestBadInputs(t *testing.T) {
	if _, err := NewVerifier("short"); err == nil {
		t.Error("short secret accepted")
	}
	if _, err := Mint("short", "a", time.Hour, time.Now()); err == nil {
		t.Error("minted with a short secret")
	}
	if _, err := Mint(secret, "", time.Hour, time.Now()); protocol.CodeOf(err) != protocol.CodeBadID {
		t.Errorf("empty id: %v", err)
	}
	if _, err := Mint(secret, "a", 0, time.Now()); err == nil {
		t.Error("minted with no lifetime")
	}
}

func FuzzVerify(f *testing.F) {
	tok, _ := Mint(secret, "A", time.Hour, time.Now())
	f.Add(tok, "A")
	f.Add("", "A")
	f.Add("eyJhbGciOiJub25lIn0.e30.", "A")
	f.Add("a.b.c", "")
	v, _ := NewVerifier(secret)
	f.Fuzz(func(t *testing.T, token, id string) {
		_, err := v.Verify(token, id)
		if err != nil && protocol.CodeOf(err) != protocol.CodeUnauthorized {
			t.Fatalf("error without UNAUTHORIZED: %v", err)
		}
		if err == nil && token != tok {
			t.Fatalf("accepted a token that was not minted: %q", token)
		}
	})
}

package admin

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/p2prelay/p2prelay/protocol"
)

// Token rules.
const (
	// TokenPrefix starts every generated admin token, so that one is never
	// mistaken for a device token (a JWT, which has no underscore prefix
	// and three dot-separated parts).
	TokenPrefix = "p2pa_"
	// MinTokenLength is the shortest token the hub accepts without a warning.
	MinTokenLength = 16
	// MaxTokenLength is the longest token the hub accepts.
	MaxTokenLength = 1024
)

// GenerateToken returns a new random admin token: TokenPrefix and 256
// random bits, URL-safe.
func GenerateToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("admin: generate token: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// ValidateToken checks an admin token: 1 to MaxTokenLength visible ASCII
// characters (it travels in an HTTP header), and not shaped like a JWT, so
// that the admin token can never double as a device token.
func ValidateToken(tok string) error {
	if tok == "" {
		return protocol.Errorf(protocol.CodeUnauthorized, "admin token is empty")
	}
	if len(tok) > MaxTokenLength {
		return protocol.Errorf(protocol.CodeUnauthorized, "admin token is longer than %d characters", MaxTokenLength)
	}
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; c <= ' ' || c > '~' {
			return protocol.Errorf(protocol.CodeUnauthorized, "admin token may only hold visible ASCII characters (no spaces)")
		}
	}
	if looksLikeJWT(tok) {
		return protocol.Errorf(protocol.CodeUnauthorized, "admin token looks like a JWT device token; the admin token must differ from device tokens")
	}
	return nil
}

// looksLikeJWT reports whether tok is three base64url parts whose first
// decodes to a JSON object: a JWS compact serialisation.
func looksLikeJWT(tok string) bool {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return false
	}
	head, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return false
	}
	var obj map[string]any
	return json.Unmarshal(head, &obj) == nil
}

// tokenHash holds the admin token's SHA-256, so that comparisons take the
// same time whatever the length of the guess.
type tokenHash [sha256.Size]byte

func hashToken(tok string) tokenHash { return sha256.Sum256([]byte(tok)) }

// matches compares a presented token with the admin token in constant time.
func (h tokenHash) matches(presented string) bool {
	if presented == "" {
		return false
	}
	got := sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(got[:], h[:]) == 1
}

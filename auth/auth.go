// Package auth issues and checks device tokens: JWTs signed HS256 with the
// relay's device secret, whose subject is the device id and which expire.
// Any JWT library can mint them; Mint is here for convenience.
package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/p2prelay/p2prelay/protocol"
)

// MinSecretLength is the shortest device secret accepted, in bytes.
const MinSecretLength = 16

// Verifier checks device tokens against one secret.
type Verifier struct {
	secret []byte
	parser *jwt.Parser
}

// NewVerifier returns a Verifier for secret, which must be at least
// MinSecretLength bytes.
func NewVerifier(secret string) (*Verifier, error) {
	if err := CheckSecret(secret); err != nil {
		return nil, err
	}
	return &Verifier{
		secret: []byte(secret),
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithExpirationRequired(),
			jwt.WithLeeway(5*time.Second),
		),
	}, nil
}

// CheckSecret checks that secret is long enough to sign device tokens.
func CheckSecret(secret string) error {
	if len(secret) < MinSecretLength {
		return fmt.Errorf("device secret must be at least %d bytes", MinSecretLength)
	}
	return nil
}

// Verify checks that token is a valid, unexpired HS256 JWT for device id,
// and returns when it expires. It returns an UNAUTHORIZED *protocol.Error
// saying what is wrong.
func (v *Verifier) Verify(token, id string) (time.Time, error) {
	var claims jwt.RegisteredClaims
	if err := v.verify(token, id, &claims); err != nil {
		return time.Time{}, err
	}
	return claims.ExpiresAt.Time, nil // required: verify refuses a token without
}

func (v *Verifier) verify(token, id string, claims *jwt.RegisteredClaims) error {
	if token == "" {
		return protocol.Errorf(protocol.CodeUnauthorized, "a device token is required")
	}
	_, err := v.parser.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return v.secret, nil })
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired):
		return protocol.Errorf(protocol.CodeUnauthorized, "device token expired")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return protocol.Errorf(protocol.CodeUnauthorized, "device token has no expiry")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return protocol.Errorf(protocol.CodeUnauthorized, "device token signature is invalid")
	case errors.Is(err, jwt.ErrTokenMalformed):
		return protocol.Errorf(protocol.CodeUnauthorized, "device token is malformed")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return protocol.Errorf(protocol.CodeUnauthorized, "device token is not valid yet")
	default:
		return protocol.Errorf(protocol.CodeUnauthorized, "device token is invalid")
	}
	if claims.Subject != id {
		return protocol.Errorf(protocol.CodeUnauthorized, "device token is for another device id")
	}
	return nil
}

// Mint returns a device token for id, valid for ttl from now.
func Mint(secret, id string, ttl time.Duration, now time.Time) (string, error) {
	if err := CheckSecret(secret); err != nil {
		return "", err
	}
	if err := protocol.ValidateID(id); err != nil {
		return "", err
	}
	if ttl <= 0 {
		return "", fmt.Errorf("token lifetime must be positive, got %s", ttl)
	}
	claims := jwt.RegisteredClaims{
		Subject:   id,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
}

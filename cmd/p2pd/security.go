package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/p2prelay/p2prelay/auth"
	"github.com/p2prelay/p2prelay/server"
)

// SecurityFlags configure who may connect and how.
type SecurityFlags struct {
	DeviceSecret   string   `help:"Secret (at least 16 bytes) that signs device tokens (HS256 JWTs whose sub is the device id). When set, every device must present a token, and a valid token reclaims an id in use." env:"P2PD_DEVICE_SECRET"`
	TLSCert        string   `help:"TLS certificate file (PEM): serve HTTPS and WSS." env:"P2PD_TLS_CERT" type:"existingfile"`
	TLSKey         string   `help:"TLS private key file (PEM), with --tls-cert." env:"P2PD_TLS_KEY" type:"existingfile"`
	AllowedOrigins []string `help:"Browser origins allowed to connect (comma-separated, * for any). Devices outside a browser send no origin and are not affected." env:"P2PD_ALLOWED_ORIGINS"`
}

// LimitFlags bound what one device can do.
type LimitFlags struct {
	MaxPayload     int     `help:"Largest relayed message or ack, in bytes of arguments (TOO_LARGE beyond it)." default:"1048576" env:"P2PD_MAX_PAYLOAD"`
	Rate           float64 `help:"Requests per second per device (token bucket); excess is refused RATE_LIMITED. 0 turns the limit off." default:"200" env:"P2PD_RATE"`
	Burst          int     `help:"Burst of the per-device request limit." default:"400" env:"P2PD_BURST"`
	PairRate       float64 `help:"Pairing requests per second per device. 0 turns the limit off." default:"2" env:"P2PD_PAIR_RATE"`
	PairBurst      int     `help:"Burst of the per-device pairing limit." default:"5" env:"P2PD_PAIR_BURST"`
	MaxDevices     int     `help:"Most devices connected at once; further connections are refused SERVER_FULL. 0 for no limit." default:"50000" env:"P2PD_MAX_DEVICES"`
	MaxPendingAcks int     `help:"Most relayed acks a device may leave unanswered; further requests to it are refused RATE_LIMITED. 0 for no limit." default:"256" env:"P2PD_MAX_PENDING_ACKS"`
}

func (f SecurityFlags) validate(adminToken string) error {
	if (f.TLSCert == "") != (f.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if f.DeviceSecret != "" {
		if err := auth.CheckSecret(f.DeviceSecret); err != nil {
			return fmt.Errorf("--device-secret: %w", err)
		}
		if f.DeviceSecret == adminToken {
			return errors.New("--device-secret and --admin-token must differ: device and admin credentials are never interchangeable")
		}
	}
	return nil
}

// verifier returns the device-token verifier, nil when tokens are off.
func (f SecurityFlags) verifier() (server.TokenVerifier, error) {
	if f.DeviceSecret == "" {
		return nil, nil
	}
	return auth.NewVerifier(f.DeviceSecret)
}

func (f LimitFlags) validate() error {
	for name, v := range map[string]float64{
		"--max-payload": float64(f.MaxPayload), "--rate": f.Rate, "--burst": float64(f.Burst),
		"--pair-rate": f.PairRate, "--pair-burst": float64(f.PairBurst), "--max-devices": float64(f.MaxDevices),
		"--max-pending-acks": float64(f.MaxPendingAcks),
	} {
		if v < 0 {
			return fmt.Errorf("%s must not be negative, got %v", name, v)
		}
	}
	if f.MaxPayload == 0 {
		return errors.New("--max-payload must be positive")
	}
	return nil
}

// apply sets the limits in a relay config; 0 means no limit.
func (f LimitFlags) apply(c *server.Config) {
	off := func(v float64) float64 {
		if v == 0 {
			return server.Unlimited
		}
		return v
	}
	c.MaxPayload = f.MaxPayload
	c.Rate, c.Burst = off(f.Rate), f.Burst
	c.PairRate, c.PairBurst = off(f.PairRate), f.PairBurst
	c.MaxDevices = int(off(float64(f.MaxDevices)))
	c.MaxPendingAcks = int(off(float64(f.MaxPendingAcks)))
}

// TokenCmd prints a device token.
type TokenCmd struct {
	ID           string        `help:"Device id the token proves." required:""`
	TTL          time.Duration `help:"How long the token is valid." default:"24h"`
	DeviceSecret string        `help:"Secret that signs device tokens (the same as p2pd's --device-secret)." env:"P2PD_DEVICE_SECRET"`
}

// Validate says where the secret comes from when it is missing.
func (c *TokenCmd) Validate() error {
	if c.DeviceSecret == "" {
		return errors.New("no device secret: set P2PD_DEVICE_SECRET (or pass --device-secret) to the secret p2pd serves with")
	}
	return nil
}

// Run prints a token for the device.
func (c *TokenCmd) Run() error {
	tok, err := auth.Mint(c.DeviceSecret, c.ID, c.TTL, time.Now())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(os.Stdout, tok)
	return err
}

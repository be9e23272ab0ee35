package socketio

import (
	"testing"
	"time"
)

// TestDeadlineDefaults: a Service built without settings has every phase
// of a connection bounded: HTTP headers and keep-alive idleness, the join,
// the upgrade, websocket silence.
func TestDeadlineDefaults(t *testing.T) {
	s, err := NewService(ServiceConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if s.srv.ReadHeaderTimeout != DefaultHTTPTimeout || s.srv.IdleTimeout != DefaultHTTPTimeout || DefaultHTTPTimeout != 10*time.Second {
		t.Errorf("HTTP timeouts: headers %s, idle %s", s.srv.ReadHeaderTimeout, s.srv.IdleTimeout)
	}
	opts, eng := s.IO.Opts(), s.IO.Engine().Opts()
	if opts.ConnectTimeout() != DefaultJoinTimeout || DefaultJoinTimeout != 5*time.Second {
		t.Errorf("join deadline %s", opts.ConnectTimeout())
	}
	if eng.UpgradeTimeout() <= 0 || eng.UpgradeTimeout() > 10*time.Second {
		t.Errorf("upgrade deadline %s", eng.UpgradeTimeout())
	}
	if want := 25*time.Second + 30*time.Second; eng.IdleTimeout() != want {
		t.Errorf("websocket silence bound %s, want %s", eng.IdleTimeout(), want)
	}
	s2, err := NewService(ServiceConfig{JoinTimeout: time.Second, HTTPTimeout: 2 * time.Second, PingInterval: time.Second, PingTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if s2.IO.Opts().ConnectTimeout() != time.Second || s2.srv.IdleTimeout != 2*time.Second || s2.IO.Engine().Opts().IdleTimeout() != 4*time.Second {
		t.Errorf("settings not applied: join %s, idle %s, silence %s", s2.IO.Opts().ConnectTimeout(), s2.srv.IdleTimeout, s2.IO.Engine().Opts().IdleTimeout())
	}
}

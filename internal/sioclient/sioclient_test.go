package sioclient

import (
	"context"
	"errors"
	"net"
	"testing"

	client "github.com/zishang520/socket.io/clients/socket/v3"
)

// websocketOnly are the options the relay's clients use. (The library's
// default transports include WebTransport, whose dial blocks its caller.)
func websocketOnly() Options {
	opts := client.DefaultOptions()
	opts.SetTransports(Transports([]string{"websocket"}))
	return Options{Client: opts}
}

// TestConnectGivesUp: once the context ends, the error says why: the
// last failure, or ErrStuck alone when no attempt got that far.
func TestConnectGivesUp(t *testing.T) {
	refused := errors.New("connection refused")
	if err := gaveUp(refused); !errors.Is(err, refused) || err.Error() != "could not reach the relay: connection refused" {
		t.Fatalf("after a failure: %v", err)
	}
	if err := gaveUp(nil); err != ErrStuck {
		t.Fatalf("after no failure: %v, want ErrStuck", err)
	}

	// A loopback port that nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Connect(done, url, websocketOnly()); err != ErrStuck {
		t.Fatalf("context ended before any attempt: err = %v, want ErrStuck alone", err)
	}
}

package server_test

import (
	"testing"
	"time"

	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server"
)

// nullConn is a Conn that drops what it is sent and answers acks at once.
type nullConn struct{}

func (nullConn) Emit(string, protocol.Args) {}
func (nullConn) EmitWithAck(_ string, _ protocol.Args, ack func(protocol.Args)) {
	ack(protocol.NewArgs(true))
}
func (nullConn) Disconnect()              {}
func (nullConn) Close()                   {}
func (nullConn) Transport() string        { return "null" }
func (nullConn) Alive(time.Duration) bool { return true }

func benchPair(b *testing.B) (*server.Relay, *server.Session) {
	b.Helper()
	r, err := server.New(server.Config{Rate: server.Unlimited})
	if err != nil {
		b.Fatal(err)
	}
	a, _ := r.Join(server.ConnInfo{DeviceID: "A", ConnID: "a", Gen: protocol.Gen2}, nullConn{})
	if _, err := r.Join(server.ConnInfo{DeviceID: "B", ConnID: "b", Gen: protocol.Gen2}, nullConn{}); err != nil {
		b.Fatal(err)
	}
	ok := false
	r.Handle(a, protocol.EventRegister, protocol.NewArgs("B"), func(v protocol.Args) { ok = v.FirstIsTrue() })
	if !ok {
		b.Fatal("not paired")
	}
	return r, a
}

// BenchmarkRelayEmit routes one P2P_EMIT through the relay core: decode the
// request, check the pairing and limits, hand the event to the peer.
func BenchmarkRelayEmit(b *testing.B) {
	r, a := benchPair(b)
	payload := protocol.NewArgs(map[string]any{"targetClientId": "B", "event": "tick", "args": []any{"hello", 42.0, map[string]any{"k": true}}})
	b.ReportAllocs()
	for b.Loop() {
		r.Handle(a, protocol.EventEmit, payload, nil)
	}
}

// BenchmarkRelayAckRoundTrip relays one P2P_EMIT_ACKNOWLEDGE and pipes the
// peer's answer back to the sender's ack.
func BenchmarkRelayAckRoundTrip(b *testing.B) {
	r, a := benchPair(b)
	payload := protocol.NewArgs(map[string]any{"targetClientId": "B", "event": "q", "args": []any{1.0}})
	answered := 0
	ack := func(protocol.Args) { answered++ }
	b.ReportAllocs()
	for b.Loop() {
		r.Handle(a, protocol.EventEmitAck, payload, ack)
	}
	if answered != b.N {
		b.Fatalf("%d acks answered for %d requests", answered, b.N)
	}
}

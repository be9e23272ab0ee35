package server_test

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server"
)

// answeringConn is an in-memory Conn whose device accepts every pairing
// request and answers every other ack at once with the event's arguments.
type answeringConn struct{}

func (answeringConn) Emit(string, protocol.Args) {}

func (answeringConn) EmitWithAck(event string, args protocol.Args, ack func(protocol.Args)) {
	if event == protocol.EventRegister {
		ack(protocol.NewArgs(true))
		return
	}
	ack(args)
}

func (answeringConn) Disconnect()              {}
func (answeringConn) Close()                   {}
func (answeringConn) Transport() string        { return "fake" }
func (answeringConn) Alive(time.Duration) bool { return true }

// FuzzHandle drives the relay core with arbitrary events and JSON
// arguments from a paired device: it must never panic, must answer every
// ack exactly once, and must leave the pair intact.
func FuzzHandle(f *testing.F) {
	for _, s := range [][2]string{
		{protocol.EventEmit, `[{"targetClientId":"B","event":"e","args":[1]}]`},
		{protocol.EventEmitAck, `[{"targetDeviceId":"B","event":"e","args":[{"k":[null,true]}]}]`},
		{protocol.EventEmitAck, `[{"targetClientId":"C","event":"e"}]`},
		{protocol.EventRegister, `["B"]`},
		{protocol.EventRegister, `[7]`},
		{protocol.EventListDevices, `[{"available":true}]`},
		{protocol.EventListClients, `[]`},
		{protocol.EventRegisterSuccess, `[]`},
		{"P2P_X", `null`},
		{"", `[[[[[]]]]]`},
	} {
		f.Add(s[0], s[1], true)
		f.Add(s[0], s[1], false)
	}
	r, err := server.New(server.Config{Rate: server.Unlimited, PairRate: server.Unlimited, AckTimeout: time.Second})
	if err != nil {
		f.Fatal(err)
	}
	a, err := r.Join(server.ConnInfo{DeviceID: "A", ConnID: "a", Gen: protocol.Gen2}, answeringConn{})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := r.Join(server.ConnInfo{DeviceID: "B", ConnID: "b", Gen: protocol.Gen2}, answeringConn{}); err != nil {
		f.Fatal(err)
	}
	paired := make(chan protocol.Args, 1)
	r.Handle(a, protocol.EventRegister, protocol.NewArgs("B"), func(v protocol.Args) { paired <- v })
	if v := <-paired; v.String() != "[true]" {
		f.Fatalf("pairing answered %v", v)
	}

	f.Fuzz(func(t *testing.T, event, argsJSON string, withAck bool) {
		var args []any
		if json.Unmarshal([]byte(argsJSON), &args) != nil {
			return
		}
		var calls int
		var mu sync.Mutex
		var ack server.Ack
		if withAck {
			ack = func(protocol.Args) { mu.Lock(); calls++; mu.Unlock() }
		}
		r.Handle(a, event, protocol.NewArgs(args...), ack)
		mu.Lock()
		defer mu.Unlock()
		if withAck && calls != 1 && event != protocol.EventRegister {
			t.Fatalf("%s %s: ack answered %d times", event, argsJSON, calls)
		}
		if event == protocol.EventUnregister {
			// Re-pair for the next input.
			done := make(chan struct{})
			r.Handle(a, protocol.EventRegister, protocol.NewArgs("B"), func(protocol.Args) { close(done) })
			<-done
		}
		if p, ok := r.Store().Peer("A"); !ok || p != "B" {
			t.Fatalf("%s %s broke the pair", event, argsJSON)
		}
	})
}

package server

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/p2prelay/p2prelay/protocol"
)

// fakeConn is an in-memory Conn that records what the relay sends; the
// device accepts every pairing request and answers every other ack at
// once with the event's arguments.
type fakeConn struct {
	mu     sync.Mutex
	events []string
}

func (c *fakeConn) Emit(event string, args ...any) {
	c.mu.Lock()
	c.events = append(c.events, event)
	c.mu.Unlock()
}

func (c *fakeConn) EmitWithAck(event string, args []any, ack func([]any)) {
	c.Emit(event, args...)
	if event == protocol.EventRegister {
		ack([]any{true})
		return
	}
	ack(args)
}

func (c *fakeConn) Disconnect()       {}
func (c *fakeConn) Transport() string { return "fake" }

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
	r, err := New(Config{Rate: Unlimited, PairRate: Unlimited, AckTimeout: time.Second})
	if err != nil {
		f.Fatal(err)
	}
	a, err := r.Join(ConnInfo{DeviceID: "A", ConnID: "a", Gen: protocol.Gen2}, &fakeConn{})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := r.Join(ConnInfo{DeviceID: "B", ConnID: "b", Gen: protocol.Gen2}, &fakeConn{}); err != nil {
		f.Fatal(err)
	}
	paired := make(chan []any, 1)
	r.Handle(a, protocol.EventRegister, []any{"B"}, func(v ...any) { paired <- v })
	if v := <-paired; len(v) != 1 || v[0] != true {
		f.Fatalf("pairing answered %v", v)
	}

	f.Fuzz(func(t *testing.T, event, argsJSON string, withAck bool) {
		var args []any
		if json.Unmarshal([]byte(argsJSON), &args) != nil {
			return
		}
		var calls int
		var mu sync.Mutex
		var ack Ack
		if withAck {
			ack = func(...any) { mu.Lock(); calls++; mu.Unlock() }
		}
		r.Handle(a, event, args, ack)
		mu.Lock()
		defer mu.Unlock()
		if withAck && calls != 1 && event != protocol.EventRegister {
			t.Fatalf("%s %s: ack answered %d times", event, argsJSON, calls)
		}
		if event == protocol.EventUnregister {
			// Re-pair for the next input.
			done := make(chan struct{})
			r.Handle(a, protocol.EventRegister, []any{"B"}, func(...any) { close(done) })
			<-done
		}
		if p, ok := r.store.Peer("A"); !ok || p != "B" {
			t.Fatalf("%s %s broke the pair", event, argsJSON)
		}
	})
}

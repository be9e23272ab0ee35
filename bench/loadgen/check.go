package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
)

// Check runs the protocol's generation-2 flows against a relay through
// this package's client and reports the first way the relay departs from
// them: pairing, relaying with and without acks, refusals with their codes,
// unregistering, and the peer's drop. The benchmark runs it on both relays
// before measuring, so that both are known to do the same work.
func Check(ctx context.Context, relayURL string) error {
	return CheckCluster(ctx, relayURL, relayURL, false)
}

// CheckCluster runs Check across two nodes of a cluster: devices A and C
// connect to urlA, B (A's peer) to urlB, and so does the second
// connection as A, which must be refused ID_IN_USE. firstValueOnly
// expects an ack answered with several values to reach the sender with the
// first of them alone, as it does through socket.io's Redis adapter, which
// carries one value per socket between nodes.
func CheckCluster(ctx context.Context, urlA, urlB string, firstValueOnly bool) error {
	d := &Dialer{URL: urlA, Timeout: 5 * time.Second}
	dB := &Dialer{URL: urlB, Timeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	dial := func(id string) (*Conn, *inbox, error) {
		in := newInbox()
		dd := d
		if id == "check-B" {
			dd = dB
		}
		c, err := dd.Dial(ctx, id, in.handle)
		return c, in, err
	}
	answer := []any{"answer", 3.0}
	if firstValueOnly {
		answer = answer[:1]
	}
	a, inA, err := dial("check-A")
	if err != nil {
		return err
	}
	defer a.Close()
	b, inB, err := dial("check-B")
	if err != nil {
		return err
	}
	defer b.Close()
	c, inC, err := dial("check-C")
	if err != nil {
		return err
	}
	defer c.Close()

	call := func(conn *Conn, event string, args ...any) ([]any, error) {
		raw, err := conn.Call(ctx, event, args...)
		if err != nil {
			return nil, err
		}
		var vals []any
		if err := json.Unmarshal(raw, &vals); err != nil {
			return nil, fmt.Errorf("%s answer %s: %w", event, raw, err)
		}
		return vals, nil
	}
	expect := func(step string, got []any, want ...any) error {
		if want == nil {
			want = []any{}
		}
		if !reflect.DeepEqual(got, want) {
			return fmt.Errorf("%s: answered %v, want %v", step, got, want)
		}
		return nil
	}
	refused := func(step string, conn *Conn, in *inbox, code string, ackShape string, event string, args ...any) error {
		got, err := call(conn, event, args...)
		if err != nil {
			return fmt.Errorf("%s: %w", step, err)
		}
		switch ackShape {
		case "false":
			// false, followed by the error object since the protocol
			// gave the reason (an older relay answers false alone).
			if len(got) == 0 || got[0] != false {
				return fmt.Errorf("%s: ack answered %v, want false", step, got)
			}
			if e, ok := ackErrorCode(got[1:]); len(got) > 1 && (!ok || e != code) {
				return fmt.Errorf("%s: ack answered %v, want false with an error %s", step, got, code)
			}
		default:
			e, _ := ackErrorCode(got)
			if e != code {
				return fmt.Errorf("%s: ack answered %v, want an error %s", step, got, code)
			}
		}
		ev, err := in.await(ctx, "SERVER_ERROR")
		if err != nil {
			return fmt.Errorf("%s: %w", step, err)
		}
		if len(ev.args) != 1 || !strings.HasPrefix(fmt.Sprint(ev.args[0]), code+":") {
			return fmt.Errorf("%s: SERVER_ERROR %v, want %s: ...", step, ev.args, code)
		}
		return nil
	}

	steps := []struct {
		name string
		fn   func() error
	}{
		{"LIST_CLIENTS", func() error {
			got, err := call(a, "LIST_CLIENTS")
			if err != nil {
				return err
			}
			if len(got) != 1 {
				return fmt.Errorf("answered %v, want one array", got)
			}
			ids, _ := got[0].([]any)
			for _, id := range []string{"check-A", "check-B", "check-C"} {
				if !slices.Contains(ids, any(id)) {
					return fmt.Errorf("answered %v, without %s", got, id)
				}
			}
			return nil
		}},
		{"P2P_REGISTER", func() error {
			got, err := call(a, "P2P_REGISTER", "check-B")
			if err != nil {
				return err
			}
			if err := expect("A pairs with B", got, true); err != nil {
				return err
			}
			ev, err := inB.await(ctx, "P2P_REGISTER")
			if err != nil {
				return err
			}
			if !reflect.DeepEqual(ev.args, []any{"check-A"}) || !ev.acked {
				return fmt.Errorf("B was asked %v (ack %v), want [check-A] with an ack", ev.args, ev.acked)
			}
			return nil
		}},
		{"P2P_EMIT", func() error {
			if err := a.Emit("P2P_EMIT", map[string]any{"targetClientId": "check-B", "event": "hello", "args": []any{1.0, "x"}}); err != nil {
				return err
			}
			ev, err := inB.await(ctx, "hello")
			if err != nil {
				return err
			}
			return expect("B receives hello", ev.args, 1.0, "x")
		}},
		{"P2P_EMIT_ACKNOWLEDGE", func() error {
			got, err := call(a, "P2P_EMIT_ACKNOWLEDGE", map[string]any{"targetClientId": "check-B", "event": "question", "args": []any{map[string]any{"n": 2.0}}})
			if err != nil {
				return err
			}
			if err := expect("B's answer piped back", got, answer...); err != nil {
				return err
			}
			ev, err := inB.await(ctx, "question")
			if err != nil {
				return err
			}
			return expect("B receives question", ev.args, map[string]any{"n": 2.0})
		}},
		{"NOT_PAIRED", func() error {
			return refused("relay to a device that is not the peer", a, inA, "NOT_PAIRED", "error",
				"P2P_EMIT_ACKNOWLEDGE", map[string]any{"targetClientId": "check-C", "event": "question", "args": []any{}})
		}},
		{"RESERVED_EVENT", func() error {
			return refused("relay a protocol event name", a, inA, "RESERVED_EVENT", "error",
				"P2P_EMIT_ACKNOWLEDGE", map[string]any{"targetClientId": "check-B", "event": "P2P_REGISTER", "args": []any{}})
		}},
		{"UNKNOWN_EVENT", func() error {
			return refused("an unknown event", a, inA, "UNKNOWN_EVENT", "error", "NO_SUCH_EVENT")
		}},
		{"BUSY", func() error {
			return refused("pair with a paired device", c, inC, "BUSY", "false", "P2P_REGISTER", "check-A")
		}},
		{"SELF", func() error { return refused("pair with oneself", c, inC, "SELF", "false", "P2P_REGISTER", "check-C") }},
		{"OFFLINE", func() error {
			return refused("pair with nobody", c, inC, "OFFLINE", "false", "P2P_REGISTER", "check-nobody")
		}},
		{"ID_IN_USE", func() error {
			dup, err := dB.Dial(ctx, "check-A", nil)
			if err == nil {
				dup.Close()
				return errors.New("a second connection as check-A was accepted")
			}
			var ce *ConnectError
			if !errors.As(err, &ce) || !strings.HasPrefix(ce.Message, "ID_IN_USE:") {
				return fmt.Errorf("a second connection as check-A: %v, want a refusal ID_IN_USE", err)
			}
			return nil
		}},
		{"P2P_UNREGISTER", func() error {
			got, err := call(a, "P2P_UNREGISTER")
			if err != nil {
				return err
			}
			if err := expect("A unregisters", got, true); err != nil {
				return err
			}
			_, err = inB.await(ctx, "P2P_UNREGISTER")
			return err
		}},
		{"P2P_DISCONNECT", func() error {
			got, err := call(a, "P2P_REGISTER", "check-B")
			if err != nil {
				return err
			}
			if err := expect("A pairs with B again", got, true); err != nil {
				return err
			}
			// An explicit disconnect, as socket.disconnect() sends it: a
			// connection that merely drops may be kept for a while.
			if err := b.Send([]byte("41")); err != nil {
				return err
			}
			b.Close()
			_, err = inA.await(ctx, "P2P_DISCONNECT")
			return err
		}},
	}
	for _, s := range steps {
		if err := s.fn(); err != nil {
			return fmt.Errorf("protocol check %s: %w", s.name, err)
		}
	}
	return nil
}

// ackErrorCode returns the code of an {"error": {"code", ...}} ack answer.
func ackErrorCode(vals []any) (string, bool) {
	if len(vals) != 1 {
		return "", false
	}
	m, _ := vals[0].(map[string]any)
	e, _ := m["error"].(map[string]any)
	code, ok := e["code"].(string)
	return code, ok
}

// inbox records the events a check device receives and answers the acks
// a device of the protocol answers: a pairing request yes, P2P_UNREGISTER
// with nothing, "question" with ("answer", 3).
type inbox struct {
	mu     sync.Mutex // guards events, wake
	events []received
	wake   chan struct{}
}

type received struct {
	name  string
	args  []any
	acked bool
	taken bool
}

func newInbox() *inbox { return &inbox{wake: make(chan struct{})} }

func (in *inbox) handle(c *Conn, p Packet) {
	if p.Kind != KindEvent {
		return
	}
	args, err := p.Args()
	if err != nil {
		args = []any{err.Error()}
	}
	name := p.Event()
	if p.AckID != NoAck {
		answer := answerNone
		switch name {
		case "P2P_REGISTER":
			answer = answerTrue
		case "question":
			answer = []byte(`["answer",3]`)
		}
		_ = c.Answer(p.AckID, answer)
	}
	in.mu.Lock()
	in.events = append(in.events, received{name: name, args: args, acked: p.AckID != NoAck})
	close(in.wake)
	in.wake = make(chan struct{})
	in.mu.Unlock()
}

// await returns the oldest event named name not returned before.
func (in *inbox) await(ctx context.Context, name string) (received, error) {
	for {
		in.mu.Lock()
		for i := range in.events {
			if e := &in.events[i]; e.name == name && !e.taken {
				e.taken = true
				in.mu.Unlock()
				return *e, nil
			}
		}
		wake := in.wake
		in.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return received{}, fmt.Errorf("no %s event: %w", name, ctx.Err())
		}
	}
}

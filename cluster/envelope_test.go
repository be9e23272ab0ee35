package cluster

import (
	"reflect"
	"testing"

	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	for _, e := range []server.Envelope{
		{Kind: server.EnvRelay, Node: "n1", To: "B", From: "A", Event: "e", Args: protocol.RawArgs([]byte(`{"b":1,"a":[2]},"\ud83d"`)), Corr: 7, Size: 22},
		{Kind: server.EnvAnswer, Node: "n2", To: "A", Corr: 1 << 40, Args: protocol.NewArgs([]byte{0, 255}, "x")},
		{Kind: server.EnvFail, Node: "n2", Corr: 3, Code: protocol.CodeOffline, Text: "gone"},
		{Kind: server.EnvReply, To: "A", From: "B", Shake: 99, Accept: true},
		{Kind: server.EnvNotice, To: "B", From: "A", Event: protocol.EventDisconnect, Unlink: true, IfUnpaired: true},
		{Kind: server.EnvLink, To: "B", From: "A", PeerNode: "n1"},
	} {
		b, err := appendEnvelope(nil, e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseEnvelope(b)
		if err != nil {
			t.Fatalf("%+v: %v", e, err)
		}
		if got.Args.String() != e.Args.String() {
			t.Errorf("args %s came back %s", e.Args, got.Args)
		}
		got.Args, e.Args = protocol.Args{}, protocol.Args{}
		if !reflect.DeepEqual(got, e) {
			t.Errorf("%+v came back %+v", e, got)
		}
	}
	for _, bad := range [][]byte{nil, {9, 1, 0}, {1, 1, 0, 200}} {
		if _, err := parseEnvelope(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func FuzzParseEnvelope(f *testing.F) {
	b, _ := appendEnvelope(nil, server.Envelope{Kind: server.EnvRelay, To: "B", From: "A", Event: "e", Args: protocol.RawArgs([]byte(`1`))})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := parseEnvelope(b)
		if err != nil {
			return
		}
		if _, err := appendEnvelope(nil, e); err != nil {
			t.Fatalf("re-encoding a parsed envelope: %v", err)
		}
	})
}

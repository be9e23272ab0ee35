package socketio

import (
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/p2prelay/p2prelay/protocol"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// libraryDecode decodes one text packet with the socket.io library's decoder.
func libraryDecode(s string) (*parser.Packet, error) {
	d := parser.NewDecoder()
	var got *parser.Packet
	_ = d.On("decoded", func(args ...any) { got, _ = args[0].(*parser.Packet) })
	err := d.Add(types.NewStringBufferString(s))
	return got, err
}

// normal decodes raw values, so fast and library results compare.
func normal(v any) any {
	switch x := v.(type) {
	case protocol.Args:
		var out []any
		if err := json.Unmarshal([]byte(x.String()), &out); err != nil {
			return err
		}
		if out == nil {
			out = []any{}
		}
		return normal(out)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normal(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normal(e)
		}
		return out
	}
	return v
}

// relayKeysOnly keeps what decodeRelayPayload keeps of a library-decoded
// relay request.
func relayKeysOnly(data []any) []any {
	if len(data) < 2 {
		return data
	}
	if ev, _ := data[0].(string); ev != "P2P_EMIT" && ev != "P2P_EMIT_ACKNOWLEDGE" {
		return data
	}
	m, ok := data[1].(map[string]any)
	if !ok {
		return data
	}
	kept := map[string]any{}
	for _, k := range []string{"targetClientId", "targetDeviceId", "event", "args"} {
		if v, ok := m[k]; ok {
			kept[k] = v
		}
	}
	out := append([]any{data[0], kept}, data[2:]...)
	return out
}

func checkAgainstLibrary(t *testing.T, s string) {
	t.Helper()
	fast := decodeFast([]byte(s))
	if fast == nil {
		return
	}
	lib, err := libraryDecode(s)
	if err != nil || lib == nil {
		t.Fatalf("%q: fast decoded it, the library refused: %v", s, err)
	}
	if fast.Type != lib.Type || fast.Nsp != lib.Nsp || !reflect.DeepEqual(fast.Id, lib.Id) {
		t.Fatalf("%q: header fast %v %q %v, library %v %q %v", s, fast.Type, fast.Nsp, fast.Id, lib.Type, lib.Nsp, lib.Id)
	}
	want := relayKeysOnly(lib.Data.([]any))
	got := normal(fast.Data)
	if fast.Type == parser.ACK {
		got = got.([]any)[0] // the ack's values, raw as one
	}
	if !reflect.DeepEqual(got, normal(want)) {
		t.Fatalf("%q: data fast %#v, library %#v", s, got, want)
	}
	// What the relay would write back means the same to the library, and
	// is UTF-8, as websocket text frames must be.
	out := relayEncoder{inner: parser.NewEncoder()}.Encode(fast)
	if !utf8.Valid(out[0].Bytes()) {
		t.Fatalf("%q re-encoded as %q, not UTF-8", s, out[0].String())
	}
	again, err := libraryDecode(out[0].String())
	if err != nil {
		t.Fatalf("%q re-encoded as %q, which the library refuses: %v", s, out[0].String(), err)
	}
	if !reflect.DeepEqual(normal(again.Data), normal(relayKeysOnly(lib.Data.([]any)))) && fast.Type == parser.ACK {
		t.Fatalf("%q re-encoded as %q: %#v", s, out[0].String(), again.Data)
	}
}

func TestDecodeFastAgreesWithLibrary(t *testing.T) {
	for _, s := range decoderSeeds {
		checkAgainstLibrary(t, s)
	}
	// What the fast path must take, and what it must leave.
	for _, s := range []string{`2["x"]`, `21["x",1]`, `3[]`, `37[{"a":1},"b"]`, `2["P2P_EMIT",{"targetClientId":"B","event":"e","args":[1,{"b":2,"a":1}]}]`} {
		if decodeFast([]byte(s)) == nil {
			t.Errorf("%q not fast-decoded", s)
		}
	}
	for _, s := range []string{`2/admin,["x"]`, `2[1]`, `2[null]`, `2[{}]`, `2["connect"]`, `51-["x",{"_placeholder":true,"num":0}]`, `2["x"`, `2{}`, `2`, `0`, `4"x"`, `2123456789012345678901["x"]`, "2[\"x\",\"\xff\"]", "3[\"\xed\xa0\xbd\"]", "2[\"x\xc3\"]"} {
		if decodeFast([]byte(s)) != nil {
			t.Errorf("%q fast-decoded, want it left to the library", s)
		}
	}
}

func TestRawArgumentsKeepTheirBytes(t *testing.T) {
	in := `2["P2P_EMIT",{"args":[ {"z":1,"a":2}, "\ud83d",123456789012345678901234567890,1e400 ],"targetClientId":"B","event":"e","extra":true}]`
	p := decodeFast([]byte(in))
	if p == nil {
		t.Fatal("not decoded")
	}
	args := p.Data.([]any)[1].(map[string]any)["args"].(protocol.Args)
	if raw, _ := args.Raw(); string(raw) != `{"z":1,"a":2}, "\ud83d",123456789012345678901234567890,1e400` {
		t.Fatalf("raw args %s", raw)
	}
	// The relay's encoder writes them back unchanged, after the event name.
	id := uint64(7)
	enc := relayEncoder{inner: parser.NewEncoder()}.Encode(&parser.Packet{Type: parser.EVENT, Nsp: "/", Id: &id, Data: []any{"é\"", args}})
	if s := enc[0].String(); s != `27["é\"",{"z":1,"a":2}, "\ud83d",123456789012345678901234567890,1e400]` {
		t.Fatalf("encoded %s", s)
	}
	// An ack's values likewise, none included.
	ack := decodeFast([]byte(`31[ ]`))
	if s := (relayEncoder{inner: parser.NewEncoder()}).Encode(&parser.Packet{Type: parser.ACK, Nsp: "/", Id: &id, Data: ack.Data})[0].String(); s != `37[]` {
		t.Fatalf("empty ack encoded %s", s)
	}
	// Anything else goes to the library's encoder.
	if s := (relayEncoder{inner: parser.NewEncoder()}).Encode(&parser.Packet{Type: parser.EVENT, Nsp: "/admin", Data: []any{"x", 1.0}})[0].String(); s != `2/admin,["x",1]` {
		t.Fatalf("library encoding %s", s)
	}
}

var decoderSeeds = []string{
	`2["x"]`, `2 ["x", 1 , [2,3] ,{"a" : "b"} ]`, `21["x"]`, `3[]`, `31[true]`, `3["a\"]b",{"c":[]}]`,
	`2["P2P_EMIT",{"targetClientId":"B","event":"e","args":[1,"a,b",{"c":"]"}]}]`,
	`2["P2P_EMIT",{"targetClientId":"B","event":"e","args":"not an array"}]`,
	`2["P2P_EMIT_ACKNOWLEDGE",{"targetDeviceId":"B","event":"e"},"extra"]`,
	`2["P2P_EMIT","string payload"]`, `2["P2P_REGISTER","B"]`, `2["x"]trailing`, `2["\u00e9"]`,
	`2[null]`, `2[true]`, `2[{}]`, `2[[]]`, `3null`, `2["P2P_EMIT",null]`,
	"2[\"x\",\"bad \xff byte\"]", `2["x","\ud83d"]`,
}

// FuzzDecodeFast checks that whatever the fast decoder accepts, the
// library's decoder accepts too, with the same meaning.
func FuzzDecodeFast(f *testing.F) {
	for _, s := range decoderSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkAgainstLibrary(t, s)
	})
}

// BenchmarkDecodeFast decodes a typical relayed message: a P2P_EMIT with
// an ack id and one object argument.
func BenchmarkDecodeFast(b *testing.B) {
	pkt := []byte(`217["P2P_EMIT",{"targetClientId":"B","event":"bench","args":[{"seq":1,"body":"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ab"}]}]`)
	b.ReportAllocs()
	for b.Loop() {
		if decodeFast(pkt) == nil {
			b.Fatal("not decoded")
		}
	}
}

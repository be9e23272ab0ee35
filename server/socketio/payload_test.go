package socketio

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/parsers/engine/v3/parser"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// decoded is one packet as eachPacket handed it on.
type decoded struct {
	typ    packet.Type
	data   string
	binary bool
}

// decodeAll runs eachPacket and returns what it handed on, checking the
// bounds every payload is held to.
func decodeAll(t *testing.T, proto int, data []byte, binary bool) ([]decoded, error) {
	t.Helper()
	var out []decoded
	total := 0
	err := eachPacket(proto, data, binary, func(p *packet.Packet, text bool, raw []byte) bool {
		b, _ := io.ReadAll(p.Data)
		_, isBytes := p.Data.(*types.BytesBuffer)
		total += len(b)
		if len(raw) == 0 || len(raw) > len(data) {
			t.Fatalf("raw packet of %d bytes from a payload of %d", len(raw), len(data))
		}
		out = append(out, decoded{p.Type, string(b), isBytes})
		return p.Type != packet.CLOSE
	})
	if len(out) > maxPayloadPackets {
		t.Fatalf("%d packets handed on, bound %d", len(out), maxPayloadPackets)
	}
	if total > len(data) {
		t.Fatalf("%d bytes of packet data from a payload of %d", total, len(data))
	}
	return out, err
}

func TestEachPacket(t *testing.T) {
	msg := func(s string) decoded { return decoded{packet.MESSAGE, s, false} }
	for _, tc := range []struct {
		name   string
		proto  int
		data   string
		binary bool
		want   []decoded
		err    error
	}{
		{"v4 one", 4, `42["x"]`, false, []decoded{msg(`2["x"]`)}, nil},
		{"v4 several", 4, "2\x1e42[\"x\"]\x1e6\x1e3", false, []decoded{{packet.PING, "", false}, msg(`2["x"]`), {packet.NOOP, "", false}, {packet.PONG, "", false}}, nil},
		{"v4 empty packets skipped", 4, "\x1e\x1e40\x1e", false, []decoded{msg("0")}, nil},
		{"v4 base64", 4, "bAQID", false, []decoded{{packet.MESSAGE, "\x01\x02\x03", true}}, nil},
		{"v4 close stops", 4, "1\x1e40", false, []decoded{{packet.CLOSE, "", false}}, nil},
		{"v4 bad type", 4, "40\x1e9", false, []decoded{msg("0")}, errBadPayload},
		{"v4 bad base64", 4, "b!!", false, nil, errBadPayload},
		{"v3 text", 3, `7:42["x"]2:40`, false, []decoded{msg(`2["x"]`), msg("0")}, nil},
		{"v3 UTF-16 lengths", 3, "4:4é😀", false, []decoded{msg("é😀")}, nil},
		{"v3 length inside a surrogate pair", 3, "3:4é😀", false, nil, errBadPayload},
		{"v3 short", 3, "9:42", false, nil, errBadPayload},
		{"v3 no colon", 3, "42", false, nil, errBadPayload},
		{"v3 long length", 3, "1234567890:4", false, nil, errBadPayload},
		{"v3 base64", 3, "6:b4AQID", false, []decoded{{packet.MESSAGE, "\x01\x02\x03", true}}, nil},
		{"v3 empty packet skipped", 3, "0:2:40", false, []decoded{msg("0")}, nil},
		{"v3 binary", 3, "\x00\x03\xff451\x01\x04\xff\x04\x01\x02\x03", true, []decoded{msg("51"), {packet.MESSAGE, "\x01\x02\x03", true}}, nil},
		{"v3 binary, UTF-8 string", 3, "\x00\x03\xff4é", true, []decoded{msg("é")}, nil},
		{"v3 binary too short", 3, "\x01\x09\xff\x04", true, nil, errBadPayload},
		{"v3 binary bad kind", 3, "\x02\x01\xff4", true, nil, errBadPayload},
		{"v3 binary bad digit", 3, "\x00\x0a\xff4", true, nil, errBadPayload},
	} {
		got, err := decodeAll(t, tc.proto, []byte(tc.data), tc.binary)
		if !errors.Is(err, tc.err) || !equalDecoded(got, tc.want) {
			t.Errorf("%s: got %v, %v; want %v, %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}

func equalDecoded(a, b []decoded) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestEachPacketBound: a payload of more packets than maxPayloadPackets
// is refused after the bound, whatever the framing.
func TestEachPacketBound(t *testing.T) {
	for _, tc := range []struct {
		proto  int
		data   []byte
		binary bool
	}{
		{4, bytes.Repeat([]byte("6\x1e"), maxPayloadPackets+1), false},
		{3, bytes.Repeat([]byte("1:6"), maxPayloadPackets+1), false},
		{3, bytes.Repeat([]byte("\x00\x01\xff6"), maxPayloadPackets+1), true},
	} {
		n := 0
		err := eachPacket(tc.proto, tc.data, tc.binary, func(*packet.Packet, bool, []byte) bool { n++; return true })
		if !errors.Is(err, errTooManyPackets) || n != maxPayloadPackets {
			t.Errorf("v%d (binary %v): %d packets, %v", tc.proto, tc.binary, n, err)
		}
	}
}

// libraryPayload decodes a payload with the library's decoder.
func libraryPayload(proto int, data []byte, binary bool) ([]decoded, error) {
	p := parser.Parserv4()
	if proto == 3 {
		p = parser.Parserv3()
	}
	var buf types.BufferInterface = types.NewStringBuffer(bytes.Clone(data))
	if binary {
		buf = types.NewBytesBuffer(bytes.Clone(data))
	}
	pkts, err := p.DecodePayload(buf)
	out := make([]decoded, 0, len(pkts))
	for _, pk := range pkts {
		b, _ := io.ReadAll(pk.Data)
		_, isBytes := pk.Data.(*types.BytesBuffer)
		out = append(out, decoded{pk.Type, string(b), isBytes})
	}
	return out, err
}

// checkPayload checks eachPacket against its bounds and, where the
// library's decoder reads the payload the same way, against it.
func checkPayload(t *testing.T, proto int, data []byte, binary bool) {
	t.Helper()
	got, err := decodeAll(t, proto, data, binary)
	if err != nil || len(got) == maxPayloadPackets {
		return
	}
	for _, d := range got {
		if d.typ == packet.CLOSE {
			return // the library reads past it
		}
	}
	// The library's Engine.IO 3 decoders read bytes that are not ASCII in
	// their own ways (its binary payloads byte by rune, bad UTF-8 as
	// U+FFFD); compare where they agree with the protocol.
	if proto == 3 && (binary || !isASCII(data)) {
		return
	}
	want, lerr := libraryPayload(proto, data, binary)
	if lerr != nil {
		return
	}
	if !equalDecoded(got, want) {
		t.Fatalf("v%d %q: decoded %v, the library %v", proto, data, got, want)
	}
}

func isASCII(b []byte) bool {
	return utf8.Valid(b) && !bytes.ContainsFunc(b, func(r rune) bool { return r >= utf8.RuneSelf })
}

var payloadSeeds = map[int][]string{
	4: {"40", `42["x"]`, "2\x1e3\x1e42[\"P2P_EMIT\",{}]", "bAQID\x1e451-[\"x\",{\"_placeholder\":true,\"num\":0}]", "6\x1e6\x1e6", "\x1e", "1", "40{\"token\":\"t\"}"},
	3: {`2:40`, `7:42["x"]1:2`, "6:b4AQID", "1:6", "0:", "3:4é", "\x00\x03\xff451\x01\x04\xff\x04\x01\x02\x03", "\x00\x01\xff2"},
}

func FuzzPayloadV4(f *testing.F) {
	for _, s := range payloadSeeds[4] {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkPayload(t, 4, data, false)
	})
}

func FuzzPayloadV3(f *testing.F) {
	for _, s := range payloadSeeds[3] {
		f.Add([]byte(s), strings.HasPrefix(s, "\x00") || strings.HasPrefix(s, "\x01"))
	}
	f.Fuzz(func(t *testing.T, data []byte, binary bool) {
		checkPayload(t, 3, data, binary)
	})
}

// BenchmarkEachPacket decodes a polling payload of 16 relayed messages.
func BenchmarkEachPacket(b *testing.B) {
	one := `42["P2P_EMIT",{"targetClientId":"B","event":"bench","args":[{"seq":1,"body":"abcdefghijklmnopqrstuvwxyz"}]}]`
	data := []byte(strings.Repeat(one+"\x1e", 15) + one)
	b.ReportAllocs()
	for b.Loop() {
		if err := eachPacket(4, data, false, func(*packet.Packet, bool, []byte) bool { return true }); err != nil {
			b.Fatal(err)
		}
	}
}

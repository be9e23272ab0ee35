package adminclient

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/p2prelay/p2prelay/admin/adminapi"
)

// decodeWith feeds one text message to a decoder and returns the packet it
// emits (nil when none) and Add's error.
func decodeWith(d parser.Decoder, text string) (*parser.Packet, error) {
	var got *parser.Packet
	_ = d.On("decoded", func(args ...any) { got, _ = args[0].(*parser.Packet) })
	err := d.Add(types.NewStringBufferString(text))
	return got, err
}

func TestRawParserKeepsTheStreamRaw(t *testing.T) {
	raw := newRawParser(adminapi.EventSnapshot, adminapi.EventDeltas)
	id := func(n uint64) *uint64 { return &n }
	for _, tc := range []struct {
		text string
		want *parser.Packet
	}{
		{`2/admin,7["deltas",[{"seq":1}]]`, &parser.Packet{Type: parser.EVENT, Nsp: "/admin", Id: id(7),
			Data: []any{"deltas", json.RawMessage(`[{"seq":1}]`)}}},
		{`2/admin,["snapshot",{"seq":3},true]`, &parser.Packet{Type: parser.EVENT, Nsp: "/admin",
			Data: []any{"snapshot", json.RawMessage(`{"seq":3}`), json.RawMessage(`true`)}}},
		{`212["deltas",null]`, &parser.Packet{Type: parser.EVENT, Nsp: "/", Id: id(12),
			Data: []any{"deltas", json.RawMessage(`null`)}}},
	} {
		got, err := decodeWith(raw.NewDecoder(), tc.text)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v (%v), want %+v", tc.text, got, err, tc.want)
		}
	}
	// Everything else is the library's: the same packet, or the same error.
	for _, text := range []string{
		`2/admin,7["other",{"a":1}]`, `3/admin,7[{"ok":true}]`, `0/admin,{"sid":"x"}`, `4/admin,{"message":"no"}`,
		`1/admin,`, `2/admin,["deltas",`, `2/admin,[]`, `2/admin,[1,2]`, `2/admin,123456789012345678901["deltas",1]`,
		`2/admin`, `2`, `9`, ``, `2["connect"]`,
	} {
		want, wantErr := decodeWith(parser.NewDecoder(), text)
		got, err := decodeWith(raw.NewDecoder(), text)
		if fmt.Sprint(err) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got, want) {
			t.Errorf("%q: got %+v (%v), want the library's %+v (%v)", text, got, err, want, wantErr)
		}
	}
}

// BenchmarkDecodeSnapshot measures taking a 10,000-device snapshot in off
// the wire: the library's decoder builds maps and slices that are
// re-encoded and decoded again into a Snapshot ("maps"), or the raw
// parser leaves it as JSON for one decode ("raw").
func BenchmarkDecodeSnapshot(b *testing.B) {
	snap := adminapi.Snapshot{Seq: 1, Time: time.Unix(0, 0)}
	for i := range 10000 {
		snap.Devices = append(snap.Devices, adminapi.Device{ID: fmt.Sprintf("device-%05d", i), Available: true,
			Address: "127.0.0.1:40000", Transport: "websocket", Generation: "gen2", EngineIO: 4})
	}
	body, err := json.Marshal([]any{adminapi.EventSnapshot, snap})
	if err != nil {
		b.Fatal(err)
	}
	text := `2/admin,1` + string(body)
	run := func(b *testing.B, p parser.Parser, decode func(arg any) (*adminapi.Snapshot, error)) {
		b.ReportAllocs()
		b.SetBytes(int64(len(text)))
		for b.Loop() {
			pkt, err := decodeWith(p.NewDecoder(), text)
			if err != nil {
				b.Fatal(err)
			}
			s, err := decode(pkt.Data.([]any)[1])
			if err != nil || len(s.Devices) != 10000 {
				b.Fatalf("decoded %v", err)
			}
		}
	}
	b.Run("maps", func(b *testing.B) {
		run(b, parser.NewParser(), func(arg any) (*adminapi.Snapshot, error) {
			re, err := json.Marshal(arg)
			if err != nil {
				return nil, err
			}
			var s adminapi.Snapshot
			return &s, json.Unmarshal(re, &s)
		})
	})
	b.Run("raw", func(b *testing.B) {
		run(b, newRawParser(adminapi.EventSnapshot), func(arg any) (*adminapi.Snapshot, error) {
			return decodeSnapshot(arg.(json.RawMessage))
		})
	})
}

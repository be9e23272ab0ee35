package protocol

import (
	"bytes"
	"reflect"
	"testing"
)

func TestArgsBinaryRoundTrip(t *testing.T) {
	for _, a := range []Args{
		RawArgs([]byte(`{"z":1,"a":2}, "\ud83d",123456789012345678901234567890`)),
		RawArgs(nil),
		NewArgs(),
		NewArgs("x", 1.0, nil, true, map[string]any{"k": []any{[]byte{0, 1, 2}, "v"}}, []byte("bin")),
		NewArgs(map[string]any{"_placeholder": true, "num": 7.0}), // a lookalike stays a value
	} {
		b, err := a.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseArgsBinary(b)
		if err != nil {
			t.Fatalf("%v: %v", a, err)
		}
		if ra, ok := a.Raw(); ok {
			rg, _ := got.Raw()
			if !bytes.Equal(ra, rg) {
				t.Errorf("raw %q came back %q", ra, rg)
			}
			continue
		}
		if !reflect.DeepEqual(got.Values(), normalise(a.Values())) {
			t.Errorf("%#v came back %#v", a.Values(), got.Values())
		}
	}
	for _, bad := range [][]byte{nil, {'x'}, {'d', 200}, {'d', 2, '[', ']', 5}} {
		if _, err := ParseArgsBinary(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// normalise turns what JSON gives back (numbers) into what it was given.
func normalise(vals []any) []any {
	if len(vals) == 0 {
		return nil
	}
	return vals
}

func FuzzParseArgsBinary(f *testing.F) {
	f.Add([]byte("r1,2"))
	b, _ := NewArgs([]byte{1}, map[string]any{"a": []any{1.0}}).AppendBinary(nil)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseArgsBinary(b)
		if err != nil {
			return
		}
		_ = a.Size()
	})
}

package protocol

import (
	"strings"
	"testing"
)

func TestArgsRawAndDecodedAgree(t *testing.T) {
	for _, c := range []struct {
		raw     string
		decoded []any
		len     int
		first   bool
		json    string
	}{
		{``, nil, 0, false, `[]`},
		{` true , 1`, []any{true, 1.0}, 2, true, `[true,1]`},
		{`false`, []any{false}, 1, false, `[false]`},
		{`"true",{"a":[1,"]"]}`, []any{"true", map[string]any{"a": []any{1.0, "]"}}}, 2, false, `["true",{"a":[1,"]"]}]`},
	} {
		raw, dec := RawArgs([]byte(c.raw)), NewArgs(c.decoded...)
		for name, a := range map[string]Args{"raw": raw, "decoded": dec} {
			if a.Len() != c.len || a.FirstIsTrue() != c.first {
				t.Errorf("%s %q: Len %d FirstIsTrue %v, want %d %v", name, c.raw, a.Len(), a.FirstIsTrue(), c.len, c.first)
			}
			v, ok := a.First()
			if ok != (c.len > 0) || ok && NewArgs(v).String() != NewArgs(c.decoded[0]).String() {
				t.Errorf("%s %q: First = %v, %v", name, c.raw, v, ok)
			}
		}
		if got := NewArgs(raw.Values()...).String(); got != c.json {
			t.Errorf("raw %q decodes to %s, want %s", c.raw, got, c.json)
		}
		if _, ok := raw.Raw(); !ok {
			t.Errorf("raw %q not raw", c.raw)
		}
		if _, ok := dec.Raw(); ok {
			t.Errorf("decoded %v raw", c.decoded)
		}
		if w := raw.Wire(); len(w) != 1 || ArgsOf(w).String() != raw.String() {
			t.Errorf("raw %q does not survive the library: %v", c.raw, w)
		}
		if w := dec.Wire(); len(w) != c.len || ArgsOf(w).String() != c.json {
			t.Errorf("decoded %v does not survive the library: %v", c.decoded, w)
		}
	}
}

func TestArgsCheck(t *testing.T) {
	deep := strings.Repeat("[", MaxArgsDepth) + strings.Repeat("]", MaxArgsDepth)
	var nested any = []any{}
	for range MaxArgsDepth {
		nested = []any{nested}
	}
	for _, c := range []struct {
		name string
		a    Args
		max  int
		code Code
	}{
		{"small raw", RawArgs([]byte(`1,"x"`)), 10, ""},
		{"large raw", RawArgs([]byte(`"` + strings.Repeat("x", 20) + `"`)), 10, CodeTooLarge},
		{"large decoded", NewArgs(strings.Repeat("x", 20)), 10, CodeTooLarge},
		{"no limit", NewArgs(strings.Repeat("x", 20)), 0, ""},
		{"binary counts its length", NewArgs([]byte(strings.Repeat("x", 20))), 10, CodeTooLarge},
		{"deep raw", RawArgs([]byte(deep)), 0, CodeBadRequest},
		{"deep decoded", NewArgs(nested), 0, CodeBadRequest},
		{"decoded relay payload with raw args inside", NewArgs(map[string]any{"args": RawArgs([]byte(deep))}), 0, CodeBadRequest},
	} {
		err := c.a.Check(c.max)
		if c.code == "" && err != nil || c.code != "" && (err == nil || err.Code != c.code) {
			t.Errorf("%s: Check = %v, want %q", c.name, err, c.code)
		}
	}
	if !NewArgs(1.0, map[string]any{"b": []byte{1}}).HasBinary() || RawArgs([]byte(`1`)).HasBinary() || NewArgs("x").HasBinary() {
		t.Errorf("HasBinary wrong")
	}
}

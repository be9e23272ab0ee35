package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode"
)

func TestParseArg(t *testing.T) {
	cases := []struct {
		in   string
		want any
	}{
		{`{"x":1}`, map[string]any{"x": json.Number("1")}},
		{`2`, json.Number("2")},
		{`-1.5e3`, json.Number("-1.5e3")},
		{`12345678901234567890`, json.Number("12345678901234567890")},
		{`true`, true},
		{`null`, nil},
		{`"quoted"`, "quoted"},
		{`[1, "a"]`, []any{json.Number("1"), "a"}},
		{`word`, "word"},
		{`two words`, "two words"},
		{`{x:1}`, "{x:1}"},
		{`1 2`, "1 2"},
		{`tru`, "tru"},
		{``, ""},
		{` 7 `, json.Number("7")},
	}
	for _, tc := range cases {
		if got := parseArg(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseArg(%q) = %#v, want %#v", tc.in, got, tc.want)
		}
	}
}

func TestSplitLine(t *testing.T) {
	cases := []struct {
		in    string
		texts []string
	}{
		{``, nil},
		{`   `, nil},
		{`emit hello`, []string{"emit", "hello"}},
		{"  emit\thello  world ", []string{"emit", "hello", "world"}},
		{`emit ev {"x": 1, "y": [1, 2]} "two words" 3`, []string{"emit", "ev", `{"x": 1, "y": [1, 2]}`, `"two words"`, "3"}},
		{`emit ev {x: 1}`, []string{"emit", "ev", "{x:", "1}"}},
		{`emit ev "unterminated`, []string{"emit", "ev", `"unterminated`}},
		{`emit ev {"a":1}b`, []string{"emit", "ev", `{"a":1}b`}},
		{`ack é "ü ü"`, []string{"ack", "é", `"ü ü"`}},
	}
	for _, tc := range cases {
		ws := splitLine(tc.in)
		var texts []string
		for _, w := range ws {
			texts = append(texts, w.text)
		}
		if !reflect.DeepEqual(texts, tc.texts) {
			t.Errorf("splitLine(%q) = %q, want %q", tc.in, texts, tc.texts)
		}
	}
	ws := splitLine(`emit ev {"x": 1} "two words" 3 plain`)
	want := []any{"emit", "ev", map[string]any{"x": json.Number("1")}, "two words", json.Number("3"), "plain"}
	for i, w := range ws {
		if !reflect.DeepEqual(w.value, want[i]) {
			t.Errorf("word %d value %#v, want %#v", i, w.value, want[i])
		}
	}
}

func FuzzSplitLine(f *testing.F) {
	for _, s := range []string{`emit a {"x": [1, 2]} "b c" 3`, `{"`, `"\u00e9"`, "\t\n", `[[[`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		for _, w := range splitLine(line) {
			if w.text == "" {
				t.Fatalf("empty word in %q", line)
			}
			if r := []rune(w.text); unicode.IsSpace(r[0]) {
				t.Fatalf("word %q starts with a space", w.text)
			}
			if !strings.Contains(line, w.text) {
				t.Fatalf("word %q not in %q", w.text, line)
			}
		}
	})
}

func TestFormatArgs(t *testing.T) {
	got := formatArgs([]any{"a b", 1.0, map[string]any{"k": "<v>"}, nil})
	if want := `"a b" 1 {"k":"<v>"} null`; got != want {
		t.Fatalf("formatArgs = %s, want %s", got, want)
	}
}

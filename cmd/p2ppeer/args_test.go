package main

import (
	"encoding/json"
	"errors"
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
		{`1 2`, "1 2"},
		{`tru`, "tru"},
		{``, ""},
		{` 7 `, json.Number("7")},
		{`12abc`, "12abc"},
	}
	for _, tc := range cases {
		got, err := parseArg(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseArg(%q) = %#v, %v; want %#v", tc.in, got, err, tc.want)
		}
	}
	// Text that starts like JSON must be JSON; the error says where not.
	for _, tc := range []struct{ in, err string }{
		{`{x:1}`, `character 2: invalid JSON: invalid character 'x' looking for beginning of object key string`},
		{`{"x": [1, 2`, `unbalanced JSON: ]} missing at the end`},
		{`"unterminated`, `unbalanced JSON: " missing at the end`},
		{`["a]"`, `unbalanced JSON: ] missing at the end`},
		{`{"a":1}b`, `character 8: more after the JSON value`},
		{`[1,]`, `character 4: invalid JSON: invalid character ']' looking for beginning of value`},
	} {
		if _, err := parseArg(tc.in); err == nil || err.Error() != tc.err {
			t.Errorf("parseArg(%q): error %v, want %q", tc.in, err, tc.err)
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
		{`ack é "ü ü"`, []string{"ack", "é", `"ü ü"`}},
		{`emit a}b x]`, []string{"emit", "a}b", "x]"}},
	}
	for _, tc := range cases {
		ws, err := splitLine(tc.in)
		if err != nil {
			t.Errorf("splitLine(%q): %v", tc.in, err)
			continue
		}
		var texts []string
		for _, w := range ws {
			texts = append(texts, w.text)
		}
		if !reflect.DeepEqual(texts, tc.texts) {
			t.Errorf("splitLine(%q) = %q, want %q", tc.in, texts, tc.texts)
		}
	}
	ws, err := splitLine(`emit ev {"x": 1} "two words" 3 plain`)
	if err != nil {
		t.Fatal(err)
	}
	want := []any{"emit", "ev", map[string]any{"x": json.Number("1")}, "two words", json.Number("3"), "plain"}
	for i, w := range ws {
		if !reflect.DeepEqual(w.value, want[i]) {
			t.Errorf("word %d value %#v, want %#v", i, w.value, want[i])
		}
	}
	// A word that starts like JSON and is not: a usage error that says at
	// which column, nothing sent.
	for _, tc := range []struct{ in, err string }{
		{`ack slow {"x": [1, 2`, `column 10: unbalanced JSON: ]} missing at the end`},
		{`emit ev {x: 1}`, `column 10: invalid JSON: invalid character 'x' looking for beginning of object key string`},
		{`emit ev "unterminated`, `column 9: unbalanced JSON: " missing at the end`},
		{`emit ev {"a":1}b`, `column 16: a space must follow the JSON value`},
		{`emit é [1 2]`, `column 11: invalid JSON: invalid character '2' after array element`},
	} {
		_, err := splitLine(tc.in)
		var ue usageError
		if !errors.As(err, &ue) || err.Error() != tc.err {
			t.Errorf("splitLine(%q): error %v, want usage error %q", tc.in, err, tc.err)
		}
	}
}

func FuzzSplitLine(f *testing.F) {
	for _, s := range []string{`emit a {"x": [1, 2]} "b c" 3`, `{"`, `"\u00e9"`, "\t\n", `[[[`, `ack {"x": [1, 2`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		words, err := splitLine(line)
		if err != nil {
			var ue usageError
			if !errors.As(err, &ue) || !strings.HasPrefix(err.Error(), "column ") {
				t.Fatalf("splitLine(%q): error %v, want a usage error with a column", line, err)
			}
			return
		}
		for _, w := range words {
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

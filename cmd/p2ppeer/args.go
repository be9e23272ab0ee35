package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode"
	"unicode/utf8"
)

// parseArg reads one argument: a JSON value when the whole text is one
// ('{"x":1}', 2, true, null, "two words"), otherwise the text as a string.
// Numbers keep their exact digits (json.Number).
func parseArg(s string) any {
	v, n, ok := decodeJSON(s)
	if ok && strings.TrimSpace(s[n:]) == "" {
		return v
	}
	return s
}

// parseArgs applies parseArg to each argument.
func parseArgs(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = parseArg(s)
	}
	return out
}

// decodeJSON decodes the JSON value at the start of s, returning it and
// the number of bytes it took.
func decodeJSON(s string) (any, int, bool) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, 0, false
	}
	return v, int(dec.InputOffset()), true
}

// word is one word of a prompt line: its text and its value as an
// argument.
type word struct {
	text  string
	value any
}

// splitLine splits a prompt line into words separated by spaces. A word
// that starts with {, [ or " and reads as one JSON value may contain
// spaces ({"x": 1}, "two words"); any other word ends at the next space
// and is an argument by parseArg.
func splitLine(line string) []word {
	var out []word
	for i := 0; i < len(line); {
		r, size := utf8.DecodeRuneInString(line[i:])
		if unicode.IsSpace(r) {
			i += size
			continue
		}
		if strings.ContainsRune(`{["`, r) {
			if v, n, ok := decodeJSON(line[i:]); ok && endsWord(line, i+n) {
				out = append(out, word{text: line[i : i+n], value: v})
				i += n
				continue
			}
		}
		j := i
		for j < len(line) {
			r, size := utf8.DecodeRuneInString(line[j:])
			if unicode.IsSpace(r) {
				break
			}
			j += size
		}
		out = append(out, word{text: line[i:j], value: parseArg(line[i:j])})
		i = j
	}
	return out
}

// endsWord reports whether a word may end at byte i of line.
func endsWord(line string, i int) bool {
	if i >= len(line) {
		return true
	}
	r, _ := utf8.DecodeRuneInString(line[i:])
	return unicode.IsSpace(r)
}

// formatArgs shows values the way they are typed: JSON values separated by
// spaces.
func formatArgs(args []any) string {
	parts := make([]string, len(args))
	for i, a := range args {
		parts[i] = compactJSON(a)
	}
	return strings.Join(parts, " ")
}

// compactJSON encodes v on one line, without escaping HTML characters.
func compactJSON(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "<unprintable>"
	}
	return strings.TrimSuffix(b.String(), "\n")
}

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// startsJSON reports whether a word that starts with r must be JSON: an
// object, an array or a string.
func startsJSON(r rune) bool { return strings.ContainsRune(`{["`, r) }

// parseArg reads one argument: a JSON value when the whole text is one
// ('{"x":1}', 2, true, null, "two words"), otherwise the text as a string.
// Text that starts with {, [ or " must be JSON: an error says where it is
// not. Numbers keep their exact digits (json.Number).
func parseArg(s string) (any, error) {
	t := strings.TrimSpace(s)
	if r, _ := utf8.DecodeRuneInString(t); t != "" && startsJSON(r) {
		v, n, jerr := decodeJSON(t)
		if jerr == nil && n < len(t) {
			jerr = &jsonError{at: n, msg: "more after the JSON value"}
		}
		if jerr != nil {
			if jerr.at < 0 {
				return nil, errors.New(jerr.msg)
			}
			return nil, fmt.Errorf("character %d: %s", utf8.RuneCountInString(t[:jerr.at])+1, jerr.msg)
		}
		return v, nil
	}
	if v, n, err := decodeJSON(s); err == nil && strings.TrimSpace(s[n:]) == "" {
		return v, nil
	}
	return s, nil
}

// parseArgs applies parseArg to each argument of the command line.
func parseArgs(ss []string) ([]any, error) {
	out := make([]any, len(ss))
	for i, s := range ss {
		v, err := parseArg(s)
		if err != nil {
			return nil, usageError{fmt.Errorf("argument %q: %w", s, err)}
		}
		out[i] = v
	}
	return out, nil
}

// jsonError says where text that must be JSON is not.
type jsonError struct {
	at  int // the byte at fault, -1 when the text ends before the value does
	msg string
}

// decodeJSON decodes the JSON value at the start of s, returning it and
// the number of bytes it took, or where it goes wrong.
func decodeJSON(s string) (any, int, *jsonError) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	var syn *json.SyntaxError
	switch {
	case err == nil:
		return v, int(dec.InputOffset()), nil
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return nil, 0, &jsonError{at: -1, msg: "unbalanced JSON: " + missing(s) + " missing at the end"}
	case errors.As(err, &syn):
		// The offset is just past the character at fault.
		return nil, 0, &jsonError{at: max(min(int(syn.Offset), len(s))-1, 0), msg: "invalid JSON: " + syn.Error()}
	}
	return nil, 0, &jsonError{at: 0, msg: err.Error()}
}

// missing lists what closes the JSON text s, which ends early: the
// brackets and quote still open, innermost first.
func missing(s string) string {
	var open []byte
	inString, escaped := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case inString && c == '"':
			inString = false
		case inString:
		case c == '"':
			inString = true
		case c == '{':
			open = append(open, '}')
		case c == '[':
			open = append(open, ']')
		case c == '}' || c == ']':
			if len(open) > 0 {
				open = open[:len(open)-1]
			}
		}
	}
	var b strings.Builder
	if inString {
		b.WriteByte('"')
	}
	for i := len(open) - 1; i >= 0; i-- {
		b.WriteByte(open[i])
	}
	if b.Len() == 0 {
		return "a value"
	}
	return b.String()
}

// word is one word of a prompt line: its text and its value as an
// argument.
type word struct {
	text  string
	value any
}

// splitLine splits a prompt line into words separated by spaces. A word
// that starts with {, [ or " is one JSON value, which may contain spaces
// ({"x": 1}, "two words"); any other word ends at the next space and is an
// argument by parseArg. A word that starts like JSON and is not one is a
// usage error that says at which column.
func splitLine(line string) ([]word, error) {
	var out []word
	for i := 0; i < len(line); {
		r, size := utf8.DecodeRuneInString(line[i:])
		if unicode.IsSpace(r) {
			i += size
			continue
		}
		if startsJSON(r) {
			v, n, jerr := decodeJSON(line[i:])
			if jerr == nil && !endsWord(line, i+n) {
				jerr = &jsonError{at: n, msg: "a space must follow the JSON value"}
			}
			if jerr != nil {
				at := i + max(jerr.at, 0) // an unbalanced value: where it starts
				return nil, usageError{fmt.Errorf("column %d: %s", utf8.RuneCountInString(line[:at])+1, jerr.msg)}
			}
			out = append(out, word{text: line[i : i+n], value: v})
			i += n
			continue
		}
		j := i
		for j < len(line) {
			r, size := utf8.DecodeRuneInString(line[j:])
			if unicode.IsSpace(r) {
				break
			}
			j += size
		}
		v, _ := parseArg(line[i:j]) // starts with neither {, [ nor "
		out = append(out, word{text: line[i:j], value: v})
		i = j
	}
	return out, nil
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

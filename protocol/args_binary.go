package protocol

import (
	"encoding/binary"
	"encoding/json"
	"errors"
)

// The binary form of Args carries them between relay nodes unchanged: raw
// JSON stays byte for byte, and binary attachments stay bytes (socket.io's
// own way: the JSON with {"_placeholder": true, "num": N} where the Nth
// attachment was, then the attachments).
//
//	'r' raw JSON elements
//	'd' uvarint(len(json)) json uvarint(n) { uvarint(len(att)) att }...

// AppendBinary appends the binary form of a to b.
func (a Args) AppendBinary(b []byte) ([]byte, error) {
	if a.raw != nil {
		b = append(b, 'r')
		return append(b, a.raw...), nil
	}
	var atts [][]byte
	vals := make([]any, len(a.vals))
	for i, v := range a.vals {
		vals[i] = placeholders(v, &atts, 0)
	}
	js, err := json.Marshal(vals)
	if err != nil {
		return b, err
	}
	b = append(b, 'd')
	b = binary.AppendUvarint(b, uint64(len(js)))
	b = append(b, js...)
	b = binary.AppendUvarint(b, uint64(len(atts)))
	for _, att := range atts {
		b = binary.AppendUvarint(b, uint64(len(att)))
		b = append(b, att...)
	}
	return b, nil
}

// placeholders returns v with each binary attachment replaced by its
// placeholder, the attachment appended to atts.
func placeholders(v any, atts *[][]byte, depth int) any {
	if depth > MaxArgsDepth {
		return nil
	}
	switch x := v.(type) {
	case []byte:
		*atts = append(*atts, x)
		return map[string]any{"_placeholder": true, "num": len(*atts) - 1}
	case interface{ Bytes() []byte }: // the socket.io library's buffers
		*atts = append(*atts, x.Bytes())
		return map[string]any{"_placeholder": true, "num": len(*atts) - 1}
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = placeholders(e, atts, depth+1)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = placeholders(e, atts, depth+1)
		}
		return out
	case Args:
		if x.raw != nil {
			return json.RawMessage(x.bracketed())
		}
		return placeholders(x.vals, atts, depth+1)
	}
	return v
}

// errArgsBinary is a malformed binary form.
var errArgsBinary = errors.New("protocol: malformed binary arguments")

// ParseArgsBinary reads Args from their binary form. Raw arguments keep
// pointing into b: the caller must not change it afterwards.
func ParseArgsBinary(b []byte) (Args, error) {
	if len(b) == 0 {
		return Args{}, errArgsBinary
	}
	switch b[0] {
	case 'r':
		return RawArgs(b[1:]), nil
	case 'd':
	default:
		return Args{}, errArgsBinary
	}
	rest := b[1:]
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > uint64(len(rest)-k) {
		return Args{}, errArgsBinary
	}
	js := rest[k : k+int(n)]
	rest = rest[k+int(n):]
	count, k := binary.Uvarint(rest)
	if k <= 0 || count > uint64(len(rest)) {
		return Args{}, errArgsBinary
	}
	rest = rest[k:]
	atts := make([][]byte, count)
	for i := range atts {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return Args{}, errArgsBinary
		}
		atts[i] = rest[k : k+int(n)]
		rest = rest[k+int(n):]
	}
	var vals []any
	if err := json.Unmarshal(js, &vals); err != nil {
		return Args{}, errArgsBinary
	}
	if len(vals) == 0 {
		return Args{}, nil
	}
	for i, v := range vals {
		vals[i] = attachments(v, atts, 0)
	}
	return NewArgs(vals...), nil
}

// attachments puts the attachments back in place of their placeholders.
func attachments(v any, atts [][]byte, depth int) any {
	if depth > MaxArgsDepth {
		return v
	}
	switch x := v.(type) {
	case []any:
		for i, e := range x {
			x[i] = attachments(e, atts, depth+1)
		}
	case map[string]any:
		if p, ok := x["_placeholder"].(bool); ok && p && len(x) == 2 {
			if n, ok := x["num"].(float64); ok && n >= 0 && int(n) < len(atts) && n == float64(int(n)) {
				return atts[int(n)]
			}
		}
		for k, e := range x {
			x[k] = attachments(e, atts, depth+1)
		}
	}
	return v
}

package protocol

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/p2prelay/p2prelay/internal/rawjson"
)

// MaxArgsDepth is how deeply relayed arguments may nest.
const MaxArgsDepth = 100

// Args are the arguments of a relayed event, or the values of an ack, from
// the decoder that reads them to the encoder that writes them on. They
// come in two forms, which only this type tells apart:
//
//   - raw: the elements of a JSON array as they arrived, without the
//     brackets (`1,{"a":2}`), kept undecoded by the relay's parser and
//     written back byte for byte by its encoder, so object keys keep their
//     order, numbers their precision and strings their escapes;
//   - decoded: Go values, for packets with binary attachments (which the
//     socket.io library decodes) and for values the relay makes itself.
//
// The zero Args has no elements. Args are read-only once made.
type Args struct {
	raw  []byte // raw elements; nil for decoded Args
	vals []any  // decoded elements
}

// NewArgs returns decoded Args holding vals.
func NewArgs(vals ...any) Args { return Args{vals: vals} }

// RawArgs returns raw Args: elems are the elements of a valid JSON array,
// without its brackets (empty for none). The caller must not change elems
// afterwards.
func RawArgs(elems []byte) Args {
	if elems == nil {
		elems = []byte{}
	}
	return Args{raw: elems}
}

// ArgsOf returns the Args that values handed over by the socket.io library
// stand for: the one Args that a packet carries when the relay's parser
// kept them raw, or else the values themselves.
func ArgsOf(vals []any) Args {
	if len(vals) == 1 {
		if a, ok := vals[0].(Args); ok {
			return a
		}
	}
	return Args{vals: vals}
}

// argsIn reads the arguments a decoded relay request carries in its args
// member: Args, an array of decoded values, or nothing (nil). ok is false
// for anything else.
func argsIn(v any) (a Args, ok bool) {
	switch x := v.(type) {
	case nil:
		return Args{}, true
	case Args:
		return x, true
	case []any:
		return Args{vals: x}, true
	}
	return Args{}, false
}

// Wire returns the values to hand to the socket.io library: raw Args as
// themselves, for the relay's encoder to write, and decoded ones as their
// values. Append nothing after them but an ack callback.
func (a Args) Wire() []any {
	if a.raw != nil {
		return []any{a}
	}
	return a.vals
}

// Raw returns the raw JSON elements, without brackets, and whether a is raw.
func (a Args) Raw() ([]byte, bool) { return a.raw, a.raw != nil }

// Len returns the number of elements.
func (a Args) Len() int {
	if a.raw == nil {
		return len(a.vals)
	}
	n := 0
	rawjson.Each(a.raw, func([]byte) bool { n++; return true })
	return n
}

// Values returns the elements as decoded values (JSON numbers as float64),
// decoding raw Args. It returns nil for no elements.
func (a Args) Values() []any {
	if a.raw == nil {
		return a.vals
	}
	if len(a.raw) == 0 {
		return nil
	}
	var out []any
	if err := json.Unmarshal(a.bracketed(), &out); err != nil {
		return nil // raw Args are valid JSON by contract
	}
	return out
}

// First returns the first element, decoded, and whether there is one.
func (a Args) First() (any, bool) {
	if a.raw == nil {
		if len(a.vals) == 0 {
			return nil, false
		}
		return a.vals[0], true
	}
	first := a.first()
	if first == nil {
		return nil, false
	}
	var v any
	if err := json.Unmarshal(first, &v); err != nil {
		return nil, false
	}
	return v, true
}

// FirstIsTrue reports whether the first element is the JSON value true: a
// device's yes.
func (a Args) FirstIsTrue() bool {
	if a.raw != nil {
		return string(a.first()) == "true"
	}
	return len(a.vals) > 0 && a.vals[0] == true
}

// first returns the first raw element, nil when none.
func (a Args) first() []byte {
	var first []byte
	rawjson.Each(a.raw, func(e []byte) bool { first = e; return false })
	return first
}

// HasBinary reports whether an element is, or holds, a binary attachment.
func (a Args) HasBinary() bool {
	if a.raw != nil {
		return false
	}
	for _, v := range a.vals {
		if hasBinary(v, 0) {
			return true
		}
	}
	return false
}

func hasBinary(v any, depth int) bool {
	if depth > MaxArgsDepth {
		return false
	}
	switch x := v.(type) {
	case []byte, interface{ Len() int }:
		return true
	case []any:
		for _, e := range x {
			if hasBinary(e, depth+1) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if hasBinary(e, depth+1) {
				return true
			}
		}
	}
	return false
}

// Check returns a TOO_LARGE *Error when the arguments take more than
// maxBytes (as JSON would count them, binary attachments by their length;
// maxBytes <= 0: no limit), and a BAD_REQUEST one when they nest deeper
// than MaxArgsDepth. It stops measuring as soon as a limit is passed.
func (a Args) Check(maxBytes int) *Error {
	_, err := a.Measure(maxBytes)
	return err
}

// Size returns how many bytes the arguments take, counted as Check counts
// them.
func (a Args) Size() int {
	n, _ := a.Measure(0)
	return n
}

// Measure is Check and Size at once: the size, and the refusal when a
// limit is passed (then the size is where measuring stopped).
func (a Args) Measure(maxBytes int) (int, *Error) {
	z := sizer{limit: maxBytes}
	if a.raw != nil {
		z.raw(a.raw, 1)
		z.size += 3 // as for the one element of a list
	} else {
		z.list(a.vals, 0)
	}
	switch {
	case z.deep:
		return z.size, Errorf(CodeBadRequest, "arguments nest deeper than %d levels", MaxArgsDepth)
	case z.over():
		return z.size, Errorf(CodeTooLarge, "arguments exceed the %d-byte limit", maxBytes)
	}
	return z.size, nil
}

// MarshalJSON encodes the elements as a JSON array, raw ones as they came.
func (a Args) MarshalJSON() ([]byte, error) {
	if a.raw != nil {
		return a.bracketed(), nil
	}
	if a.vals == nil {
		return []byte("[]"), nil
	}
	return json.Marshal(a.vals)
}

// String returns the elements as a JSON array, for logs and tests.
func (a Args) String() string {
	b, err := a.MarshalJSON()
	if err != nil {
		return "[" + strconv.Quote(err.Error()) + "]"
	}
	return string(b)
}

func (a Args) bracketed() []byte {
	b := make([]byte, 0, len(a.raw)+2)
	b = append(b, '[')
	b = append(b, bytes.TrimSpace(a.raw)...)
	return append(b, ']')
}

// sizer measures decoded values the way their JSON encoding would count
// them, binary attachments by their length, stopping as soon as a limit
// is passed.
type sizer struct {
	limit int // bytes; <= 0 for none
	size  int
	deep  bool
}

func (z *sizer) over() bool { return z.limit > 0 && z.size > z.limit }

// list measures a list of values at depth, as JSON counts an array.
func (z *sizer) list(vals []any, depth int) {
	z.size += 2 + len(vals)
	for _, e := range vals {
		z.walk(e, depth+1)
	}
}

// raw measures raw JSON elements whose list is at depth.
func (z *sizer) raw(elems []byte, depth int) {
	z.size += len(elems)
	if depth+rawjson.Depth(elems) > MaxArgsDepth {
		z.deep = true
	}
}

func (z *sizer) walk(v any, depth int) {
	if z.deep || z.over() {
		return
	}
	if depth > MaxArgsDepth {
		z.deep = true
		return
	}
	switch x := v.(type) {
	case nil:
		z.size += 4
	case bool:
		z.size += 5
	case string:
		z.size += len(x) + 2
	case float64:
		z.size += len(strconv.FormatFloat(x, 'g', -1, 64))
	case []any:
		z.list(x, depth)
	case map[string]any:
		z.size += 2 + len(x)
		for k, e := range x {
			z.size += len(k) + 3
			z.walk(e, depth+1)
		}
	case Args:
		if x.raw != nil {
			z.raw(x.raw, depth)
			return
		}
		z.list(x.vals, depth)
	case []byte:
		z.size += len(x)
	case interface{ Len() int }: // a binary attachment buffer
		z.size += x.Len()
	default:
		z.size += 8
	}
}

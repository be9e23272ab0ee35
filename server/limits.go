package server

import (
	"strconv"

	"github.com/p2prelay/p2prelay/protocol"
)

// MaxDepth is how deeply relayed arguments may nest.
const MaxDepth = 100

// sizer measures decoded arguments the way their JSON encoding would count
// them, binary attachments by their length, stopping as soon as a limit is
// passed.
type sizer struct {
	limit int // bytes; <= 0 for none
	size  int
	deep  bool
}

// checkArgs returns a TOO_LARGE or BAD_REQUEST *protocol.Error when args
// pass the payload limit (limit <= 0: none) or MaxDepth.
func checkArgs(args []any, limit int) *protocol.Error {
	z := sizer{limit: limit}
	z.walk(args, 0)
	switch {
	case z.deep:
		return protocol.Errorf(protocol.CodeBadRequest, "arguments nest deeper than %d levels", MaxDepth)
	case z.over():
		return protocol.Errorf(protocol.CodeTooLarge, "arguments exceed the %d-byte limit", limit)
	}
	return nil
}

func (z *sizer) over() bool { return z.limit > 0 && z.size > z.limit }

func (z *sizer) walk(v any, depth int) {
	if z.deep || z.over() {
		return
	}
	if depth > MaxDepth {
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
		z.size += 2 + len(x)
		for _, e := range x {
			z.walk(e, depth+1)
		}
	case map[string]any:
		z.size += 2 + len(x)
		for k, e := range x {
			z.size += len(k) + 3
			z.walk(e, depth+1)
		}
	case protocol.RawArgs: // relayed values, still raw
		z.size += len(x)
		if depth+rawDepth(x) > MaxDepth {
			z.deep = true
		}
	case []byte:
		z.size += len(x)
	case interface{ Len() int }: // a binary attachment buffer
		z.size += x.Len()
	default:
		z.size += 8
	}
}

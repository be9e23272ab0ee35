// Package rawjson walks JSON text that is already known to be valid,
// without decoding it: it finds where values end, splits arrays and
// objects into their raw elements, and measures nesting. The relay keeps
// relayed arguments as raw JSON and needs no more than this to route them.
//
// Every function assumes valid JSON (check with encoding/json.Valid first);
// on anything else it returns something, never panics, and means nothing.
package rawjson

// Scan returns the end of the valid JSON value that starts at b[i].
func Scan(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			i = skipString(b, i)
			if depth == 0 {
				return i + 1
			}
		case '[', '{':
			depth++
		case ']', '}':
			if depth == 0 {
				return i
			}
			depth--
			if depth == 0 {
				return i + 1
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i
			}
		}
	}
	return i
}

// skipString returns the index of the quote that closes the string
// opening at b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return i
}

// SkipSpace returns the index of the first byte at or after i that is not
// JSON white space.
func SkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// Array returns the raw elements of a valid JSON array (brackets included
// in arr).
func Array(arr []byte) [][]byte {
	var out [][]byte
	for e, rest := next(arr[1:]); e != nil; e, rest = next(rest) {
		out = append(out, e)
	}
	return out
}

// Each calls f with each raw element of elems, the inside of a JSON array
// without its brackets (a closing bracket, if present, ends the walk),
// until f returns false.
func Each(elems []byte, f func(elem []byte) bool) {
	for e, rest := next(elems); e != nil && f(e); e, rest = next(rest) {
	}
}

// next returns the first raw element of elems and what follows it, or a
// nil element when there is none.
func next(elems []byte) (elem, rest []byte) {
	i := SkipSpace(elems, 0)
	if i == len(elems) || elems[i] == ']' {
		return nil, nil
	}
	end := Scan(elems, i)
	if end == i {
		return nil, nil
	}
	rest = elems[end:]
	j := SkipSpace(rest, 0)
	if j < len(rest) && rest[j] == ',' {
		j++
	}
	return elems[i:end], rest[j:]
}

// Object returns the raw key and value of each member of a valid JSON
// object.
func Object(b []byte) [][2][]byte {
	var out [][2][]byte
	i := SkipSpace(b, 1)
	for i < len(b) && b[i] != '}' {
		kend := Scan(b, i)
		key := b[i:kend]
		i = SkipSpace(b, kend)
		i = SkipSpace(b, i+1) // the colon
		vend := Scan(b, i)
		out = append(out, [2][]byte{key, b[i:vend]})
		i = SkipSpace(b, vend)
		if i < len(b) && b[i] == ',' {
			i = SkipSpace(b, i+1)
		}
	}
	return out
}

// Depth returns how deeply valid JSON text nests: 0 for a scalar, 1 for
// [] or {}, and so on.
func Depth(b []byte) int {
	depth, deepest := 0, 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			i = skipString(b, i)
		case '[', '{':
			depth++
			deepest = max(deepest, depth)
		case ']', '}':
			depth--
		}
	}
	return deepest
}

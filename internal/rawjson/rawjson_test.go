package rawjson

import (
	"reflect"
	"testing"
)

func TestDepth(t *testing.T) {
	for s, want := range map[string]int{`1`: 0, `[]`: 1, `[[],{"a":[1]}]`: 3, `"[[["`: 0, `{"k":"]]"}`: 1} {
		if got := Depth([]byte(s)); got != want {
			t.Errorf("Depth(%s) = %d, want %d", s, got, want)
		}
	}
}

func TestSplit(t *testing.T) {
	strs := func(bs [][]byte) []string {
		out := make([]string, len(bs))
		for i, b := range bs {
			out[i] = string(b)
		}
		return out
	}
	if got, want := strs(Array([]byte(`[ 1 , "a,]" ,{"b":[2,3]}, [] ]`))), []string{`1`, `"a,]"`, `{"b":[2,3]}`, `[]`}; !reflect.DeepEqual(got, want) {
		t.Errorf("Array = %q, want %q", got, want)
	}
	if got := Array([]byte(`[]`)); len(got) != 0 {
		t.Errorf("Array([]) = %q", strs(got))
	}
	var elems []string
	Each([]byte(`true, null,"x\"y"`), func(e []byte) bool { elems = append(elems, string(e)); return true })
	if want := []string{`true`, `null`, `"x\"y"`}; !reflect.DeepEqual(elems, want) {
		t.Errorf("Each = %q, want %q", elems, want)
	}
	members := Object([]byte(`{ "a" : 1, "b":{"c":"}"} }`))
	if len(members) != 2 || string(members[0][0]) != `"a"` || string(members[0][1]) != `1` || string(members[1][1]) != `{"c":"}"}` {
		t.Errorf("Object = %q", members)
	}
}

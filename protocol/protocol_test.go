package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestValidateID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"A", true},
		{"设备-1", true},
		{strings.Repeat("é", MaxIDLength), true},
		{strings.Repeat("é", MaxIDLength+1), false},
		{"", false},
		{"a\x00b", false},
		{"tab\there", false},
		{"del\x7f", false},
		{"\u0085next", false},
		{string([]byte{0xff, 0xfe}), false},
		{"with space", true},
		{"Living Room TV", true},
		{"kiosk-7_a.b@c+d/e:f", true},
		{"café", true},
		{"cafe\u0301", true},          // e + combining acute: a letter's mark
		{"नमस्ते", true},              // Devanagari: letters and their marks
		{"กิน", true},                 // Thai: a vowel mark on a consonant
		{"kiosk\u200b1", false},       // zero-width space (Cf)
		{"kiosk\u202e1", false},       // right-to-left override (Cf, bidi control)
		{"kiosk\u2066a\u2069", false}, // bidi isolates (Cf)
		{"kiosk\u200e", false},        // left-to-right mark (Cf)
		{"kiosk\ufeff", false},        // byte order mark (Cf)
		{"kiosk\u00ad1", false},       // soft hyphen (Cf)
		{"kiosk\u00a01", false},       // no-break space (Zs)
		{"kiosk\u20281", false},       // line separator (Zl)
		{"kiosk\u20291", false},       // paragraph separator (Zp)
		{"kiosk\u30001", false},       // ideographic space (Zs)
		{"kiosk1\u0301", false},       // combining mark on a digit
		{"\u0301kiosk", false},        // combining mark at the start
		{"kiosk-\u0338", false},       // combining overlay on punctuation
		{"kiosk\u034f1", false},       // combining grapheme joiner (invisible)
		{"kiosk\ufe0f", false},        // variation selector
		{"kiosk\u3164", false},        // Hangul filler (an invisible letter)
		{"kiosk\ue000", false},        // private use
		{"kiosk\U000e0041", false},    // tag character (Cf)
		{" kiosk", false},
		{"kiosk ", false},
		{"kiosk  1", false},
		{" ", false},
		{strings.Repeat("x", MaxIDLength), true},
		{strings.Repeat("x", MaxIDLength+1), false},
	} {
		err := ValidateID(tc.id)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateID(%q) = %v, want ok=%v", tc.id, err, tc.ok)
		}
		if err != nil && CodeOf(err) != CodeBadID {
			t.Errorf("ValidateID(%q) code %q", tc.id, CodeOf(err))
		}
	}
}

func TestIDFromQuery(t *testing.T) {
	q := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	for _, tc := range []struct {
		m    map[string]string
		id   string
		gen  Generation
		fail bool
	}{
		{map[string]string{"deviceId": "A"}, "A", Gen1, false},
		{map[string]string{"clientId": "B"}, "B", Gen2, false},
		{map[string]string{"clientId": "B", "deviceId": "B"}, "B", Gen2, false},
		{map[string]string{"clientId": "B", "deviceId": "C"}, "", 0, true},
		{map[string]string{}, "", 0, true},
		{map[string]string{"clientId": ""}, "", 0, true},
	} {
		id, gen, err := IDFromQuery(q(tc.m))
		if (err != nil) != tc.fail || id != tc.id || gen != tc.gen {
			t.Errorf("IDFromQuery(%v) = %q, %v, %v", tc.m, id, gen, err)
		}
	}
}

func TestParseRelayRequest(t *testing.T) {
	for _, tc := range []struct {
		json string
		code Code
	}{
		{`{"targetClientId":"B","event":"e","args":[1,"x"]}`, ""},
		{`{"targetDeviceId":"B","event":"e"}`, ""},
		{`{"targetDeviceId":"B","targetClientId":"B","event":"e","args":null}`, ""},
		{`{"targetDeviceId":"B","targetClientId":"C","event":"e"}`, CodeBadRequest},
		{`{"event":"e"}`, CodeBadRequest},
		{`{"targetClientId":1,"event":"e"}`, CodeBadRequest},
		{`{"targetClientId":"","event":"e"}`, CodeBadID},
		{`{"targetClientId":"B"}`, CodeBadRequest},
		{`{"targetClientId":"B","event":""}`, CodeBadRequest},
		{`{"targetClientId":"B","event":"P2P_EMIT"}`, CodeReservedEvent},
		{`{"targetClientId":"B","event":"connect"}`, CodeReservedEvent},
		{`{"targetClientId":"B","event":"e","args":{}}`, CodeBadRequest},
		{`{"targetClientId":"B","event":"e","args":"s"}`, CodeBadRequest},
		{`[]`, CodeBadRequest},
		{`null`, CodeBadRequest},
		{`"x"`, CodeBadRequest},
	} {
		var v any
		if err := json.Unmarshal([]byte(tc.json), &v); err != nil {
			t.Fatal(err)
		}
		_, err := ParseRelayRequest(v)
		if CodeOf(err) != tc.code {
			t.Errorf("ParseRelayRequest(%s) = %v, want code %q", tc.json, err, tc.code)
		}
	}
}

func TestServerErrorText(t *testing.T) {
	e := Errorf(CodeNotPaired, "device %q is not your peer", "B")
	if got := e.Error(); got != `NOT_PAIRED: device "B" is not your peer` {
		t.Fatalf("Error() = %q", got)
	}
	back := ParseServerError(e.Error())
	if back.Code != CodeNotPaired || back.Message != e.Message {
		t.Fatalf("round trip %+v", back)
	}
	if p := ParseServerError("no code here"); p.Code != "" {
		t.Fatalf("code from plain text: %+v", p)
	}
	if p := ParseAckError([]any{e.AckPayload()}); p == nil || p.Code != CodeNotPaired {
		t.Fatalf("ParseAckError %+v", p)
	}
	if ParseAckError([]any{map[string]any{"error": "x"}}) != nil || ParseAckError([]any{1, 2}) != nil {
		t.Fatal("ParseAckError accepted a non-error")
	}
}

// FuzzParseRelayRequest feeds arbitrary JSON to the request decoder: it must
// never panic, and what it accepts must obey the rules.
func FuzzParseRelayRequest(f *testing.F) {
	for _, s := range []string{
		`{"targetClientId":"B","event":"e","args":[1]}`, `{"targetDeviceId":"B","event":"P2P_X"}`,
		`{"targetClientId":["B"],"event":{}}`, `[[[[]]]]`, `{"args":[{"_placeholder":true,"num":0}]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var v any
		if json.Unmarshal([]byte(s), &v) != nil {
			return
		}
		req, err := ParseRelayRequest(v)
		if err != nil {
			if CodeOf(err) == "" {
				t.Fatalf("error without a code: %v", err)
			}
			return
		}
		if ValidateID(req.Target) != nil || req.Event == "" || IsReservedEvent(req.Event) || len(req.Event) > MaxEventNameLength {
			t.Fatalf("accepted a bad request %+v", req)
		}
	})
}

func FuzzValidateID(f *testing.F) {
	for _, s := range []string{"A", "", "\x00", strings.Repeat("x", 129), "设备", "kiosk\u202e1", "a b", "e\u0301", "1\u0301", "\u00a0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		err := ValidateID(id)
		n := utf8.RuneCountInString(id)
		shape := utf8.ValidString(id) && n >= 1 && n <= MaxIDLength
		if err != nil {
			if CodeOf(err) != CodeBadID {
				t.Fatalf("ValidateID(%q) = %v, want BAD_ID", id, err)
			}
			// Printable ASCII with single inner spaces is always an id.
			if shape && !strings.Contains(id, "  ") && strings.TrimSpace(id) == id && !strings.ContainsFunc(id, func(r rune) bool { return r < ' ' || r > '~' }) {
				t.Fatalf("ValidateID(%q) = %v, want ok", id, err)
			}
			return
		}
		if !shape || strings.TrimSpace(id) != id || strings.Contains(id, "  ") {
			t.Fatalf("ValidateID(%q) accepted a bad shape", id)
		}
		prev := rune(-1)
		for _, r := range id {
			bad := unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Co, unicode.Cs) ||
				(r != ' ' && unicode.Is(unicode.Z, r)) ||
				unicode.In(r, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point) ||
				(unicode.Is(unicode.M, r) && !(prev >= 0 && unicode.In(prev, unicode.L, unicode.M))) ||
				!unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Zs)
			if bad {
				t.Fatalf("ValidateID(%q) accepted %U", id, r)
			}
			prev = r
		}
	})
}

func FuzzParseServerError(f *testing.F) {
	f.Add("NOT_PAIRED: x")
	f.Add(":")
	f.Add("A:")
	f.Fuzz(func(t *testing.T, s string) {
		e := ParseServerError(s)
		if e.Code == "" {
			if e.Message != s {
				t.Fatalf("ParseServerError(%q) lost text: %+v", s, e)
			}
			return
		}
		rest, ok := strings.CutPrefix(s, string(e.Code)+":")
		if !ok || strings.TrimPrefix(rest, " ") != e.Message || strings.ContainsFunc(string(e.Code), func(r rune) bool { return (r < 'A' || r > 'Z') && r != '_' }) {
			t.Fatalf("ParseServerError(%q) = %+v", s, e)
		}
	})
}

func TestAsError(t *testing.T) {
	busy := Errorf(CodeBusy, "device %q is busy", "B")
	if got := AsError(fmt.Errorf("pairing: %w", busy)); got != busy {
		t.Fatalf("wrapped *Error: got %v, want the same *Error", got)
	}
	got := AsError(errors.New("no payload"))
	if got.Code != CodeBadRequest || got.Message != "no payload" {
		t.Fatalf("plain error: got %+v, want BAD_REQUEST with its text", got)
	}
	if p := got.AckPayload()["error"]; !reflect.DeepEqual(p, got.ConnectErrorData()) {
		t.Fatalf("AckPayload error %v, want %v", p, got.ConnectErrorData())
	}
}

func TestSplitAck(t *testing.T) {
	var got []any
	ack := func(vals []any, _ error) { got = vals }
	rest, fn := SplitAck([]any{"B", ack})
	if len(rest) != 1 || rest[0] != "B" || fn == nil {
		t.Fatalf("with an ack: rest %v, ack %v", rest, fn != nil)
	}
	fn([]any{true}, nil)
	if len(got) != 1 || got[0] != true {
		t.Fatalf("the ack returned is not the caller's: %v", got)
	}
	for _, args := range [][]any{nil, {}, {"B"}, {"B", "not a callback"}} {
		if rest, fn := SplitAck(args); fn != nil || len(rest) != len(args) {
			t.Fatalf("%v: rest %v, ack %v", args, rest, fn != nil)
		}
	}
}

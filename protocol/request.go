package protocol

import (
	"unicode"
	"unicode/utf8"
)

// MaxIDLength is the longest device id, in characters.
const MaxIDLength = 128

// ValidateID checks a device id against the one id rule (docs/PROTOCOL.md,
// Connecting): 1 to MaxIDLength characters of valid UTF-8, each a letter,
// mark, number, punctuation or symbol, or a space between two other
// characters. Ids are shown to people (listings, the dashboard, logs), so
// nothing that displays as nothing or as something else is allowed: no
// control characters, no format characters (zero-width characters, bidi
// controls such as U+202E), no separators but that single space (no
// no-break space, no line separator), no other invisible characters
// (variation selectors, Hangul fillers), no private-use or unassigned code
// points, and no combining mark that follows anything but a letter or
// another mark. It returns a BAD_ID *Error otherwise.
func ValidateID(id string) error {
	if id == "" {
		return Errorf(CodeBadID, "device id is empty")
	}
	if plainASCII(id) {
		if len(id) > MaxIDLength {
			return Errorf(CodeBadID, "device id is longer than %d characters", MaxIDLength)
		}
		return nil
	}
	if !utf8.ValidString(id) {
		return Errorf(CodeBadID, "device id is not valid UTF-8")
	}
	n, prev := 0, rune(-1)
	for i, r := range id {
		n++
		if n > MaxIDLength {
			return Errorf(CodeBadID, "device id is longer than %d characters", MaxIDLength)
		}
		if err := checkIDRune(r, prev, i == 0, i+utf8.RuneLen(r) == len(id)); err != nil {
			return err
		}
		prev = r
	}
	return nil
}

// plainASCII reports whether id is printable ASCII with every space
// between two other characters: the ids nearly every device has, which
// need no Unicode tables.
func plainASCII(id string) bool {
	if id[0] == ' ' || id[len(id)-1] == ' ' {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c < ' ' || c > '~' || (c == ' ' && id[i-1] == ' ') {
			return false
		}
	}
	return true
}

// checkIDRune applies the id rule to r, which follows prev (-1 at the
// start).
func checkIDRune(r, prev rune, first, last bool) error {
	switch {
	case r == ' ':
		if first || last || prev == ' ' {
			return Errorf(CodeBadID, "device id has a space at its start or end, or two in a row")
		}
		return nil
	case unicode.IsControl(r):
		return Errorf(CodeBadID, "device id contains control character %U", r)
	case unicode.Is(unicode.Cf, r):
		return Errorf(CodeBadID, "device id contains format character %U (invisible, or a bidi control)", r)
	case unicode.Is(unicode.Z, r):
		return Errorf(CodeBadID, "device id contains separator %U (only a plain space between characters is allowed)", r)
	case unicode.Is(unicode.Variation_Selector, r) || unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r):
		return Errorf(CodeBadID, "device id contains invisible character %U", r)
	case unicode.Is(unicode.M, r):
		if prev < 0 || !unicode.In(prev, unicode.L, unicode.M) {
			return Errorf(CodeBadID, "device id contains combining mark %U that follows no letter", r)
		}
		return nil
	case !unicode.In(r, unicode.L, unicode.N, unicode.P, unicode.S):
		return Errorf(CodeBadID, "device id contains %U, a private-use, surrogate or unassigned code point", r)
	}
	return nil
}

// IDFromQuery picks the device id and generation out of the handshake query.
// get returns the first value of a query key and whether it was present.
// A device names itself with deviceId (generation 1) or clientId
// (generation 2); naming both, with different values, is refused.
func IDFromQuery(get func(key string) (string, bool)) (string, Generation, error) {
	dev, hasDev := get(QueryDeviceID)
	cli, hasCli := get(QueryClientID)
	switch {
	case hasDev && hasCli && dev != cli:
		return "", 0, Errorf(CodeBadID, "deviceId %q and clientId %q disagree; give one", dev, cli)
	case hasCli:
		if err := ValidateID(cli); err != nil {
			return "", 0, err
		}
		return cli, Gen2, nil
	case hasDev:
		if err := ValidateID(dev); err != nil {
			return "", 0, err
		}
		return dev, Gen1, nil
	}
	return "", 0, Errorf(CodeBadID, "no device id: connect with ?clientId=ID (or ?deviceId=ID)")
}

// RelayRequest is a decoded P2P_EMIT or P2P_EMIT_ACKNOWLEDGE payload.
type RelayRequest struct {
	Target string // targetClientId or targetDeviceId
	Event  string
	Args   Args // the arguments to relay
}

// ParseRelayRequest decodes the first argument of P2P_EMIT or
// P2P_EMIT_ACKNOWLEDGE: an object with a target (targetClientId, or
// targetDeviceId for generation 1), a non-empty event name that is not
// reserved, and args, an array (absent or null means no arguments).
func ParseRelayRequest(payload any) (RelayRequest, error) {
	m, ok := payload.(map[string]any)
	if !ok {
		return RelayRequest{}, Errorf(CodeBadRequest, "relay request must be an object {targetClientId, event, args}, got %s", typeName(payload))
	}
	var req RelayRequest
	target, err := targetOf(m)
	if err != nil {
		return RelayRequest{}, err
	}
	req.Target = target

	ev, ok := m[KeyEvent].(string)
	switch {
	case !ok:
		return RelayRequest{}, Errorf(CodeBadRequest, "event must be a string, got %s", typeName(m[KeyEvent]))
	case ev == "":
		return RelayRequest{}, Errorf(CodeBadRequest, "event name is empty")
	case len(ev) > MaxEventNameLength:
		return RelayRequest{}, Errorf(CodeBadRequest, "event name is longer than %d bytes", MaxEventNameLength)
	case IsReservedEvent(ev) && ev != EventEmitStream:
		return RelayRequest{}, Errorf(CodeReservedEvent, "event %q is reserved", ev)
	}
	req.Event = ev

	args, ok := argsIn(m[KeyArgs])
	if !ok {
		return RelayRequest{}, Errorf(CodeBadRequest, "args must be an array, got %s", typeName(m[KeyArgs]))
	}
	req.Args = args
	return req, nil
}

// MaxEventNameLength is the longest relayed event name, in bytes.
const MaxEventNameLength = 256

func targetOf(m map[string]any) (string, error) {
	var (
		target string
		found  bool
	)
	for _, key := range [...]string{KeyTargetClientID, KeyTargetDeviceID} {
		v, ok := m[key]
		if !ok || v == nil {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return "", Errorf(CodeBadRequest, "%s must be a string, got %s", key, typeName(v))
		}
		if found && s != target {
			return "", Errorf(CodeBadRequest, "targetClientId and targetDeviceId disagree")
		}
		target, found = s, true
	}
	if !found {
		return "", Errorf(CodeBadRequest, "missing target: give targetClientId (or targetDeviceId)")
	}
	if err := ValidateID(target); err != nil {
		return "", err
	}
	return target, nil
}

// ParseTarget decodes the target id of P2P_REGISTER.
func ParseTarget(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", Errorf(CodeBadRequest, "target id must be a string, got %s", typeName(v))
	}
	if err := ValidateID(s); err != nil {
		return "", err
	}
	return s, nil
}

// typeName names a decoded JSON value's type for error messages.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case float64, float32, int, int64, int32, uint64, uint32:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "binary or another type"
}

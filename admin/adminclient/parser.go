package adminclient

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// rawParser is the socket.io parser of an admin connection: the library's
// own, except that the arguments of the events it names reach the
// listeners as json.RawMessage. The library's decoder turns every payload
// into maps and slices; the stream's snapshots and deltas are instead
// decoded once, by the subscription, straight into their types.
type rawParser struct {
	events map[string]bool // the events whose arguments stay raw
}

func newRawParser(events ...string) rawParser {
	p := rawParser{events: make(map[string]bool, len(events))}
	for _, ev := range events {
		p.events[ev] = true
	}
	return p
}

func (p rawParser) NewEncoder() parser.Encoder { return parser.NewEncoder() }

func (p rawParser) NewDecoder() parser.Decoder {
	return &rawDecoder{Decoder: parser.NewDecoder(), events: p.events}
}

// rawDecoder decodes the text packets of the raw events itself and hands
// everything else to the library's decoder, whose listeners it shares.
type rawDecoder struct {
	parser.Decoder
	events map[string]bool
}

func (d *rawDecoder) Add(data any) error {
	var text []byte
	switch v := data.(type) {
	case *types.StringBuffer: // how the Engine.IO client passes a text message
		text = v.Bytes()
	case string:
		text = []byte(v)
	}
	if p := d.rawEvent(text); p != nil {
		d.Emit("decoded", p)
		return nil
	}
	return d.Decoder.Add(data)
}

// maxIDDigits is the longest packet id the library's decoder accepts.
const maxIDDigits = 20

// rawEvent decodes text when it is an EVENT packet of one of d's events:
// a type digit, an optional namespace ("/admin,"), an optional ack id,
// then the JSON array [name, args...]. It returns nil for anything else,
// valid or not: the library's decoder takes it, and reports what is wrong.
func (d *rawDecoder) rawEvent(text []byte) *parser.Packet {
	if len(text) < 2 || text[0] != '0'+byte(parser.EVENT) {
		return nil
	}
	rest := text[1:]
	nsp := "/"
	if rest[0] == '/' {
		i := bytes.IndexByte(rest, ',')
		if i < 0 {
			return nil
		}
		nsp, rest = string(rest[:i]), rest[i+1:]
	}
	digits := 0
	for digits < len(rest) && rest[digits] >= '0' && rest[digits] <= '9' {
		digits++
	}
	var id *uint64
	if digits > 0 {
		n, err := strconv.ParseUint(string(rest[:digits]), 10, 64)
		if err != nil || digits > maxIDDigits {
			return nil
		}
		id, rest = &n, rest[digits:]
	}
	if len(rest) == 0 || rest[0] != '[' {
		return nil
	}
	var args []json.RawMessage
	if json.Unmarshal(rest, &args) != nil || len(args) == 0 {
		return nil
	}
	var name string
	if json.Unmarshal(args[0], &name) != nil || !d.events[name] {
		return nil
	}
	payload := make([]any, len(args))
	payload[0] = name
	for i, a := range args[1:] {
		payload[i+1] = a
	}
	return &parser.Packet{Type: parser.EVENT, Nsp: nsp, Id: id, Data: payload}
}

package socketio

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/parsers/engine/v3/parser"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// maxPayloadPackets bounds the Engine.IO packets in one polling payload
// (one POST). A device sends what it queued while its previous POST was
// under way: under the default rate limit (200 a second, bursts of 400)
// that is far fewer. Beyond it the connection is closed.
const maxPayloadPackets = 1000

// maxLengthDigits bounds the length prefix of a packet in an Engine.IO 3
// payload: 9 digits is more than any message the relay accepts.
const maxLengthDigits = 9

var (
	errTooManyPackets = fmt.Errorf("more than %d packets in one payload", maxPayloadPackets)
	errBadPayload     = errors.New("malformed Engine.IO payload")
)

// eachPacket decodes an Engine.IO payload, as a polling device POSTs it,
// one packet at a time: each packet goes to fn before the next is decoded,
// so decoding holds one packet at a time, each in a right-sized copy.
// It answers the library's payload decoders (parser-v3.go, parser-v4.go),
// which decode every packet of a payload before handing any on, each in a
// buffer grown by 512 bytes whatever its size: a 2 MB POST of empty
// packets held about 760 MB until the last was decoded.
//
// proto is the Engine.IO protocol (3 or 4); binary says data came as
// application/octet-stream (Engine.IO 3's binary payload). fn returns
// false to stop (the device closed); it also gets the packet as it came,
// raw (text: its type as an ASCII digit first; binary: its type byte
// first). eachPacket returns errTooManyPackets past maxPayloadPackets and
// errBadPayload for anything malformed, after handing on the packets
// before it.
func eachPacket(proto int, data []byte, binary bool, fn func(p *packet.Packet, text bool, raw []byte) bool) error {
	d := payloadDecoder{fn: fn}
	switch {
	case proto == 4:
		return d.v4(data)
	case binary:
		return d.v3Binary(data)
	default:
		return d.v3Text(data)
	}
}

type payloadDecoder struct {
	fn   func(*packet.Packet, bool, []byte) bool
	n    int
	done bool
}

// hand decodes one packet and hands it on. An empty packet is skipped, as
// the library skips it.
func (d *payloadDecoder) hand(b []byte, text bool, proto int) error {
	if len(b) == 0 {
		return nil
	}
	if d.n++; d.n > maxPayloadPackets {
		return errTooManyPackets
	}
	p, err := decodePacket(b, text, proto)
	if err != nil {
		return err
	}
	d.done = !d.fn(p, text, b)
	return nil
}

// v4 decodes packets separated by the record separator 0x1E.
func (d *payloadDecoder) v4(data []byte) error {
	for len(data) > 0 && !d.done {
		i := bytes.IndexByte(data, parser.SEPARATOR)
		if i < 0 {
			i = len(data)
		}
		if err := d.hand(data[:i], true, 4); err != nil {
			return err
		}
		data = data[min(i+1, len(data)):]
	}
	return nil
}

// v3Text decodes packets each written "<length>:<packet>", the length in
// UTF-16 code units as JavaScript counts a string.
func (d *payloadDecoder) v3Text(data []byte) error {
	for len(data) > 0 && !d.done {
		colon := bytes.IndexByte(data[:min(len(data), maxLengthDigits+1)], ':')
		if colon < 1 {
			return errBadPayload
		}
		n, ok := digits(data[:colon], '0')
		if !ok {
			return errBadPayload
		}
		data = data[colon+1:]
		end, units := 0, 0
		for units < n {
			if end == len(data) {
				return errBadPayload
			}
			r, size := utf8.DecodeRune(data[end:])
			end += size
			units++
			if r >= 0x10000 {
				units++ // a surrogate pair in JavaScript
			}
		}
		if units != n {
			return errBadPayload // the length ends inside a character
		}
		if err := d.hand(data[:end], true, 3); err != nil {
			return err
		}
		data = data[end:]
	}
	return nil
}

// v3Binary decodes packets each written as a kind byte (0: a string
// packet, 1: a binary one), the length as one byte per decimal digit, 0xFF,
// then length bytes: a string packet's UTF-8, or a binary packet's type
// byte and data.
func (d *payloadDecoder) v3Binary(data []byte) error {
	for len(data) > 0 && !d.done {
		kind := data[0]
		end := bytes.IndexByte(data[1:min(len(data), maxLengthDigits+2)], 0xFF)
		if kind > 1 || end < 1 {
			return errBadPayload
		}
		n, ok := digits(data[1:1+end], 0)
		if !ok || n > len(data)-end-2 {
			return errBadPayload
		}
		data = data[end+2:]
		if err := d.hand(data[:n], kind == 0, 3); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// digits reads b as a decimal number whose digits are zero+0 to zero+9.
func digits(b []byte, zero byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < zero || c > zero+9 {
			return 0, false
		}
		n = n*10 + int(c-zero)
	}
	return n, true
}

// decodePacket decodes one Engine.IO packet: text, its type as an ASCII
// digit ('b' for base64 binary), or binary (Engine.IO 3), its type as a
// byte. Data is a copy of the packet's, never nil.
func decodePacket(b []byte, text bool, proto int) (*packet.Packet, error) {
	if !text {
		typ, ok := parser.PACKET_TYPES_REVERSE[b[0]+'0']
		if !ok {
			return nil, errBadPayload
		}
		return &packet.Packet{Type: typ, Data: types.NewBytesBuffer(bytes.Clone(b[1:]))}, nil
	}
	if b[0] == 'b' {
		typ := packet.MESSAGE // Engine.IO 4: "b" + base64 is always a message
		b = b[1:]
		if proto == 3 {
			if len(b) == 0 {
				return nil, errBadPayload
			}
			var ok bool
			if typ, ok = parser.PACKET_TYPES_REVERSE[b[0]]; !ok {
				return nil, errBadPayload
			}
			b = b[1:]
		}
		raw := make([]byte, base64.StdEncoding.DecodedLen(len(b)))
		n, err := base64.StdEncoding.Decode(raw, b)
		if err != nil {
			return nil, errBadPayload
		}
		return &packet.Packet{Type: typ, Data: types.NewBytesBuffer(raw[:n:n])}, nil
	}
	typ, ok := parser.PACKET_TYPES_REVERSE[b[0]]
	if !ok {
		return nil, errBadPayload
	}
	var data []byte
	if len(b) > 1 {
		data = bytes.Clone(b[1:])
	}
	return &packet.Packet{Type: typ, Data: types.NewStringBuffer(data)}, nil
}

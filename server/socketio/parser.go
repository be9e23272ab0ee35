package socketio

import (
	"bytes"
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/p2prelay/p2prelay/internal/rawjson"
	"github.com/p2prelay/p2prelay/protocol"
)

// NewParser returns the relay's socket.io parser. It decodes only what
// routing needs and leaves relayed arguments as they came: the arguments of
// P2P_EMIT and P2P_EMIT_ACKNOWLEDGE, and the values of acks, stay raw JSON
// (protocol.Args, raw) on the way in and are written back byte for byte on
// the way out. That saves decoding and re-encoding every relayed value,
// and it delivers arguments exactly as sent: object keys keep their order,
// numbers their precision, strings their escapes (a lone UTF-16 surrogate
// too).
//
// Everything else, binary packets included, goes to the library's own
// decoder and encoder, so errors and limits are the library's.
func NewParser() parser.Parser { return relayParser{} }

type relayParser struct{}

func (relayParser) NewEncoder() parser.Encoder { return relayEncoder{inner: parser.NewEncoder()} }

func (relayParser) NewDecoder() parser.Decoder {
	d := &relayDecoder{EventEmitter: types.NewEventEmitter(), inner: parser.NewDecoder()}
	_ = d.inner.On("decoded", func(args ...any) {
		d.binary.Store(false)
		if p, ok := args[0].(*parser.Packet); ok {
			d.emit(p)
		}
	})
	return d
}

// relayDecoder decodes plain EVENT and ACK packets of the default namespace
// itself and hands every other packet to the library's decoder.
type relayDecoder struct {
	types.EventEmitter
	inner  parser.Decoder
	binary atomic.Bool // the inner decoder is reassembling a binary packet

	mu      sync.Mutex      // guards left
	left    map[string]bool // namespaces the client disconnected from
	anyLeft atomic.Bool     // left is not empty: packets must be checked
}

func (d *relayDecoder) Add(data any) error {
	if sb, ok := data.(*types.StringBuffer); ok && !d.binary.Load() {
		b := sb.Bytes()
		if p := decodeFast(b); p != nil {
			d.emit(p)
			return nil
		}
		if len(b) > 0 && (b[0] == '5' || b[0] == '6') {
			d.binary.Store(true)
		}
	}
	return d.inner.Add(data)
}

func (d *relayDecoder) Destroy() { d.inner.Destroy() }

// emit hands a decoded packet on, unless it is for a namespace the client
// has left: the socket.io library closes the whole connection on a packet
// for a namespace it has no socket for, where socket.io 2 servers ignored
// it. A socket.io-client 2.x device whose socket left "/" while its
// manager kept the connection (the generation-2 client plugin's Proxy
// does that) sends such packets, and closing would make the manager
// reconnect and, on Engine.IO 3, rejoin "/" under the device's id with no
// application behind it. A CONNECT for the namespace ends the silence.
func (d *relayDecoder) emit(p *parser.Packet) {
	if p.Type != parser.DISCONNECT && !d.anyLeft.Load() {
		d.Emit("decoded", p)
		return
	}
	d.mu.Lock()
	switch {
	case p.Type == parser.CONNECT:
		delete(d.left, p.Nsp)
		d.anyLeft.Store(len(d.left) > 0)
	case d.left[p.Nsp]:
		d.mu.Unlock()
		return
	case p.Type == parser.DISCONNECT:
		if d.left == nil {
			d.left = make(map[string]bool, 1)
		}
		d.left[p.Nsp] = true
		d.anyLeft.Store(true)
	}
	d.mu.Unlock()
	d.Emit("decoded", p)
}

// decodeFast decodes a plain EVENT or ACK packet of the default namespace,
// or returns nil when the packet is anything else or anything about it is
// off, for the library's decoder to handle (and refuse) as it does.
func decodeFast(b []byte) *parser.Packet {
	if len(b) < 3 || (b[0] != '2' && b[0] != '3') {
		return nil
	}
	typ := parser.EVENT
	if b[0] == '3' {
		typ = parser.ACK
	}
	i := 1
	if b[i] == '/' { // a namespace other than "/"
		return nil
	}
	p := &parser.Packet{Type: typ, Nsp: "/"}
	start := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i > start {
		if i-start > parser.DefaultMaxPacketIDLength {
			return nil
		}
		id, err := strconv.ParseUint(string(b[start:i]), 10, 64)
		if err != nil {
			return nil
		}
		p.Id = &id
	}
	payload := bytes.TrimRight(b[rawjson.SkipSpace(b, i):], " \t\n\r")
	// Raw values are written to the peer byte for byte, into a websocket
	// text frame or a polling response, both of which must be UTF-8: a
	// peer's client drops a connection that carries anything else (RFC
	// 6455, 8.1). JSON escapes, lone surrogates ("\ud83d") included, are
	// ASCII and pass. Invalid input goes to the library's decoder, which
	// reads each bad byte as U+FFFD, so that what reaches the peer is
	// always valid. The check runs over bytes json.Valid reads anyway, at
	// a fraction of its cost.
	if len(payload) == 0 || payload[0] != '[' || !utf8.Valid(payload) || !json.Valid(payload) {
		return nil
	}
	// The engine may reuse its buffer once Add returns, and the packet is
	// handled later: keep a copy that the raw values can point into.
	payload = bytes.Clone(payload)
	if typ == parser.ACK {
		p.Data = []any{rawInner(payload)}
		return p
	}
	elems := rawjson.Array(payload)
	if len(elems) == 0 || elems[0][0] != '"' {
		return nil // no event name, or not a string: the library decides
	}
	event, ok := jsonString(elems[0])
	if !ok {
		return nil
	}
	if parser.ReservedEvents.Has(event) {
		return nil // a reserved event name: the library decides
	}
	data := make([]any, len(elems))
	data[0] = event
	for k, e := range elems[1:] {
		var v any
		if k == 0 && (event == protocol.EventEmit || event == protocol.EventEmitAck) && e[0] == '{' {
			v = decodeRelayPayload(e)
		} else if err := json.Unmarshal(e, &v); err != nil {
			return nil
		}
		data[k+1] = v
	}
	p.Data = data
	return p
}

// decodeRelayPayload decodes the {target, event, args} object of a relay
// request, leaving the elements of args raw. Keys that routing does not
// read are dropped.
func decodeRelayPayload(obj []byte) map[string]any {
	m := make(map[string]any, 3)
	for _, kv := range rawjson.Object(obj) {
		key, ok := jsonString(kv[0])
		if !ok {
			continue
		}
		switch key {
		case protocol.KeyTargetClientID, protocol.KeyTargetDeviceID, protocol.KeyEvent:
			m[key] = decodeValue(kv[1])
		case protocol.KeyArgs:
			if kv[1][0] == '[' {
				m[key] = rawInner(kv[1])
				continue
			}
			m[key] = decodeValue(kv[1])
		}
	}
	return m
}

// rawInner returns the elements of a valid JSON array, without its
// brackets, as raw Args.
func rawInner(arr []byte) protocol.Args {
	return protocol.RawArgs(bytes.TrimSpace(arr[1 : len(arr)-1]))
}

// decodeValue decodes a valid JSON value, strings without escapes the
// quick way.
func decodeValue(raw []byte) any {
	if s, ok := plainString(raw); ok {
		return s
	}
	var v any
	_ = json.Unmarshal(raw, &v)
	return v
}

// jsonString decodes a JSON string, at no more cost than the copy when it
// has no escapes.
func jsonString(raw []byte) (string, bool) {
	if s, ok := plainString(raw); ok {
		return s, true
	}
	var s string
	return s, json.Unmarshal(raw, &s) == nil
}

// plainString returns a JSON string that has no escapes and is valid
// UTF-8 as a Go string.
func plainString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || bytes.IndexByte(raw, '\\') >= 0 || !utf8.Valid(raw) {
		return "", false
	}
	return string(raw[1 : len(raw)-1]), true
}

// relayEncoder writes plain EVENT and ACK packets whose data is an event
// name and raw arguments itself, and hands every other packet to the
// library's encoder.
type relayEncoder struct{ inner parser.Encoder }

func (e relayEncoder) Encode(p *parser.Packet) []types.BufferInterface {
	if b, ok := encodeFast(p); ok {
		return []types.BufferInterface{types.NewStringBuffer(b)}
	}
	return e.inner.Encode(p)
}

// encodeFast encodes an EVENT or ACK packet made of an event name (for
// EVENT) and raw arguments, or reports false.
func encodeFast(p *parser.Packet) ([]byte, bool) {
	if p.Type != parser.EVENT && p.Type != parser.ACK {
		return nil, false
	}
	data, ok := p.Data.([]any)
	if !ok {
		return nil, false
	}
	size := 24 + len(p.Nsp)
	for i, v := range data {
		switch x := v.(type) {
		case string:
			if i != 0 || p.Type != parser.EVENT {
				return nil, false
			}
			size += len(x) + 8
		case protocol.Args:
			raw, ok := x.Raw()
			if !ok {
				return nil, false
			}
			size += len(raw) + 1
		default:
			return nil, false
		}
	}
	b := make([]byte, 0, size)
	b = append(b, byte('0'+p.Type))
	if p.Nsp != "" && p.Nsp != "/" {
		b = append(b, p.Nsp...)
		b = append(b, ',')
	}
	if p.Id != nil {
		b = strconv.AppendUint(b, *p.Id, 10)
	}
	b = append(b, '[')
	first := true
	for _, v := range data {
		switch x := v.(type) {
		case string:
			b = appendJSONString(b, x)
			first = false
		case protocol.Args:
			raw, _ := x.Raw()
			if len(raw) == 0 {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			b = append(b, raw...)
			first = false
		}
	}
	return append(b, ']'), true
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

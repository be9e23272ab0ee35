package cluster

import (
	"encoding/binary"
	"errors"

	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server"
)

// The wire form of a server.Envelope between nodes: a version byte, the
// kind, a flags byte, then each string and number length-prefixed, the
// arguments last in their binary form (protocol.Args.AppendBinary), so
// raw JSON crosses byte for byte and binary attachments stay bytes.

const envelopeVersion = 1

const (
	flagAccept = 1 << iota
	flagUnlink
	flagIfUnpaired
	flagArgs
)

// appendEnvelope appends the wire form of e to b.
func appendEnvelope(b []byte, e server.Envelope) ([]byte, error) {
	var flags byte
	if e.Accept {
		flags |= flagAccept
	}
	if e.Unlink {
		flags |= flagUnlink
	}
	if e.IfUnpaired {
		flags |= flagIfUnpaired
	}
	_, raw := e.Args.Raw()
	hasArgs := raw || e.Args.Len() > 0
	if hasArgs {
		flags |= flagArgs
	}
	b = append(b, envelopeVersion, byte(e.Kind), flags)
	for _, s := range [...]string{e.Node, e.To, e.From, e.Event, string(e.Code), e.Text, e.PeerNode} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendUvarint(b, e.Corr)
	b = binary.AppendUvarint(b, e.Shake)
	b = binary.AppendUvarint(b, uint64(max(e.Size, 0)))
	if hasArgs {
		return e.Args.AppendBinary(b)
	}
	return b, nil
}

var errEnvelope = errors.New("cluster: malformed envelope")

// parseEnvelope reads an envelope from its wire form. Its raw arguments
// point into b.
func parseEnvelope(b []byte) (server.Envelope, error) {
	var e server.Envelope
	if len(b) < 3 || b[0] != envelopeVersion {
		return e, errEnvelope
	}
	flags := b[2]
	e.Kind = server.EnvelopeKind(b[1])
	e.Accept, e.Unlink, e.IfUnpaired = flags&flagAccept != 0, flags&flagUnlink != 0, flags&flagIfUnpaired != 0
	rest := b[3:]
	str := func() (string, bool) {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return "", false
		}
		s := string(rest[k : k+int(n)])
		rest = rest[k+int(n):]
		return s, true
	}
	num := func() (uint64, bool) {
		n, k := binary.Uvarint(rest)
		if k <= 0 {
			return 0, false
		}
		rest = rest[k:]
		return n, true
	}
	var code string
	for _, p := range [...]*string{&e.Node, &e.To, &e.From, &e.Event, &code, &e.Text, &e.PeerNode} {
		s, ok := str()
		if !ok {
			return e, errEnvelope
		}
		*p = s
	}
	e.Code = protocol.Code(code)
	var size uint64
	for _, p := range [...]*uint64{&e.Corr, &e.Shake, &size} {
		n, ok := num()
		if !ok {
			return e, errEnvelope
		}
		*p = n
	}
	e.Size = int(size)
	if flags&flagArgs != 0 {
		args, err := protocol.ParseArgsBinary(rest)
		if err != nil {
			return e, errEnvelope
		}
		e.Args = args
	}
	return e, nil
}

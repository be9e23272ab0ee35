// Package storetest is the contract every server.Store must keep. A Store
// implementation runs it with one call in its own tests:
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) server.Store { return NewStore(...) })
//	}
//
// Each subtest gets a fresh, empty store from the factory.
package storetest

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server"
)

// Factory returns a new, empty Store for one subtest. It may register
// cleanup with t.
type Factory func(t *testing.T) server.Store

// Run runs the contract against stores from newStore.
func Run(t *testing.T, newStore Factory) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, newStore(t))
		})
	}
}

type contractCase struct {
	name string
	run  func(t *testing.T, s server.Store)
}

var cases = []contractCase{
	{"AddGetRemove", testAddGetRemove},
	{"GetReturnsWhatAddStored", testGetReturnsWhatAddStored},
	{"ResumeClaimsTheAwayRecord", testResumeClaimsAwayRecord},
	{"AddRefusesAnIDInUse", testAddRefusesIDInUse},
	{"AddTakeoverEndsPairAndHandshakes", testTakeover},
	{"RemoveOnlyByHolder", testRemoveOnlyByHolder},
	{"BeginPairRefusals", testBeginPairRefusals},
	{"HandshakeAcceptedAndRefused", testHandshake},
	{"EndPairIsOnce", testEndPairOnce},
	{"CrossedRequestsPairAtOnce", testCrossed},
	{"UnpairFreesBoth", testUnpair},
	{"RemoveEndsPairAndHandshakes", testRemoveEnds},
	{"EndPairAfterRemovalIsStale", testEndPairAfterRemoval},
	{"SuspendKeepsAPairedDeviceAway", testSuspend},
	{"SuspendRemovesAnUnpairedDevice", testSuspendUnpaired},
	{"AwayDeviceRemovedAfterItsWindow", testAwayRemoved},
	{"AwayDeviceThatLostItsPeerIsOffline", testAwayUnpaired},
	{"ConcurrentAddOfOneID", testConcurrentAdd},
	{"ConcurrentResumeOfOneID", testConcurrentResume},
	{"ConcurrentCrossedBeginPair", testConcurrentCrossed},
	{"ConcurrentAsksOfOneTarget", testConcurrentAsks},
	{"ConcurrentRemoveAndEndPair", testConcurrentRemoveAndEndPair},
}

func dev(id string) server.Device {
	return server.Device{ID: id, ConnID: "c-" + id, Gen: protocol.Gen2, Address: "127.0.0.1:1", Transport: "websocket", EngineIO: 4}
}

func mustAdd(t *testing.T, s server.Store, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if _, err := s.Add(dev(id), false); err != nil {
			t.Fatalf("Add(%s): %v", id, err)
		}
	}
}

func mustBegin(t *testing.T, s server.Store, src, dst string) server.Handshake {
	t.Helper()
	res, err := s.BeginPair(src, dst)
	if err != nil || res.Handshake == nil {
		t.Fatalf("BeginPair(%s, %s) = %+v, %v; want a handshake", src, dst, res, err)
	}
	return *res.Handshake
}

func mustPair(t *testing.T, s server.Store, a, b string) {
	t.Helper()
	hs := mustBegin(t, s, a, b)
	out, err := s.EndPair(hs.ID, true)
	if err != nil || out.Pair == nil {
		t.Fatalf("EndPair(%d, true) = %+v, %v; want a pair", hs.ID, out, err)
	}
}

func wantCode(t *testing.T, what string, err error, code protocol.Code) {
	t.Helper()
	if got := protocol.CodeOf(err); got != code {
		t.Fatalf("%s: error %v (code %q), want code %s", what, err, got, code)
	}
}

// wantState checks each device's peer and pairing, written
// "id:peer:pairing" with empty fields for none.
func wantState(t *testing.T, s server.Store, want ...string) {
	t.Helper()
	for _, w := range want {
		f := strings.Split(w, ":")
		if len(f) != 3 {
			t.Fatalf("bad want %q", w)
		}
		id, peer, pairing := f[0], f[1], f[2]
		d, ok := s.Get(id)
		if !ok {
			t.Fatalf("%s: not in the store", id)
		}
		if d.Peer != peer || d.Pairing != pairing {
			t.Fatalf("%s: peer %q pairing %q, want peer %q pairing %q", id, d.Peer, d.Pairing, peer, pairing)
		}
		if got, ok := s.Peer(id); ok != (peer != "") || got != peer {
			t.Fatalf("%s: Peer() = %q, %v; want %q", id, got, ok, peer)
		}
	}
}

func testAddGetRemove(t *testing.T, s server.Store) {
	if s.Len() != 0 || len(s.Devices()) != 0 || len(s.Pairs()) != 0 {
		t.Fatalf("a new store is not empty")
	}
	d := dev("A")
	d.Peer, d.Pairing = "X", "Y" // the store owns these: Add clears them
	if c, err := s.Add(d, false); err != nil || c.Replaced != nil || c.Resumed {
		t.Fatalf("Add = %+v, %v", c, err)
	}
	mustAdd(t, s, "B")
	got, ok := s.Get("A")
	if !ok || got.ID != "A" || got.ConnID != d.ConnID || got.Address != d.Address || got.Transport != d.Transport || got.EngineIO != 4 || got.Gen != protocol.Gen2 {
		t.Fatalf("Get(A) = %+v, %v", got, ok)
	}
	if got.Peer != "" || got.Pairing != "" || !got.Available() {
		t.Fatalf("a new device is not free: %+v", got)
	}
	if _, ok := s.Get("Z"); ok {
		t.Fatalf("Get(Z) found a device never added")
	}
	if s.Len() != 2 {
		t.Fatalf("Len = %d, want 2", s.Len())
	}
	ids := []string{}
	for _, d := range s.Devices() {
		ids = append(ids, d.ID)
	}
	sort.Strings(ids)
	if fmt.Sprint(ids) != "[A B]" {
		t.Fatalf("Devices = %v", ids)
	}
	td, ok := s.Remove("A", d.ConnID)
	if !ok || td == nil || td.Device.ID != "A" || td.Pair != nil || len(td.Handshakes) != 0 {
		t.Fatalf("Remove = %+v, %v", td, ok)
	}
	if _, ok := s.Get("A"); ok || s.Len() != 1 {
		t.Fatalf("A still there after Remove")
	}
	if _, ok := s.Remove("A", d.ConnID); ok {
		t.Fatalf("second Remove reported true")
	}
}

// sameDevice reports whether got is want, times compared as instants (a
// store may drop the monotonic reading and the *time.Location).
func sameDevice(got, want server.Device) bool {
	if !got.ConnectedAt.Equal(want.ConnectedAt) || !got.TokenExpires.Equal(want.TokenExpires) {
		return false
	}
	got.ConnectedAt, got.TokenExpires = want.ConnectedAt, want.TokenExpires
	return got == want
}

func testGetReturnsWhatAddStored(t *testing.T, s server.Store) {
	d := server.Device{
		ID: "A", ConnID: "c-A", Node: "node-1", Gen: protocol.Gen1,
		Address: "[::1]:4242", Transport: "polling", EngineIO: 3,
		ConnectedAt:  time.Date(2024, 2, 29, 23, 59, 58, 123456789, time.FixedZone("", 5*3600+1800)),
		TokenExpires: time.Date(2031, 1, 2, 3, 4, 5, 6, time.UTC),
	}
	if _, err := s.Add(d, false); err != nil {
		t.Fatalf("Add: %v", err)
	}
	if got, ok := s.Get("A"); !ok || !sameDevice(got, d) {
		t.Fatalf("Get(A) = %+v, %v; want %+v", got, ok, d)
	}
	if ds := s.Devices(); len(ds) != 1 || !sameDevice(ds[0], d) {
		t.Fatalf("Devices = %+v; want [%+v]", ds, d)
	}
	// Without a token, the zero time stays zero.
	b := dev("B")
	mustAdd(t, s, "B")
	if got, _ := s.Get("B"); !got.TokenExpires.IsZero() || !got.ConnectedAt.IsZero() || !sameDevice(got, b) {
		t.Fatalf("Get(B) = %+v; want %+v", got, b)
	}
	// The teardown of a removal carries the whole record, with its peer.
	mustPair(t, s, "A", "B")
	td, ok := s.Remove("A", "c-A")
	want := d
	want.Peer = "B"
	if !ok || !sameDevice(td.Device, want) {
		t.Fatalf("Remove teardown device = %+v; want %+v", td.Device, want)
	}
}

func testResumeClaimsAwayRecord(t *testing.T, s server.Store) {
	mustAdd(t, s, "B")
	a := dev("A")
	a.Node = "node-1"
	if _, err := s.Add(a, false); err != nil {
		t.Fatalf("Add: %v", err)
	}
	mustPair(t, s, "A", "B")
	if _, kept, _ := s.Suspend("A", "c-A"); !kept {
		t.Fatalf("A not kept")
	}
	// An away device is still a device.
	if s.Len() != 2 || len(s.Devices()) != 2 {
		t.Fatalf("Len %d, Devices %+v: want both, one away", s.Len(), s.Devices())
	}
	// Even a takeover resumes an away id, rather than replacing it.
	back := dev("A")
	back.ConnID, back.Node, back.Address = "c-A2", "node-2", "10.0.0.2:1"
	c, err := s.Add(back, true)
	if err != nil || !c.Resumed || c.Replaced != nil || c.Peer != "B" || c.PrevNode != "node-1" {
		t.Fatalf("Add of an away id with takeover = %+v, %v; want resumed from node-1 with peer B", c, err)
	}
	want := back
	want.Peer = "B"
	if got, _ := s.Get("A"); !sameDevice(got, want) {
		t.Fatalf("A after resuming = %+v; want %+v", got, want)
	}
	if p := s.Pairs(); len(p) != 1 || p[0].A != "A" || p[0].B != "B" {
		t.Fatalf("Pairs after resuming = %+v", p)
	}
}

func testAddRefusesIDInUse(t *testing.T, s server.Store) {
	mustAdd(t, s, "A")
	other := dev("A")
	other.ConnID = "c-other"
	c, err := s.Add(other, false)
	wantCode(t, "Add of an id in use", err, protocol.CodeIDInUse)
	if c.Replaced != nil || c.Resumed {
		t.Fatalf("refused Add claimed %+v", c)
	}
	if d, _ := s.Get("A"); d.ConnID != "c-A" {
		t.Fatalf("refused Add changed the holder to %q", d.ConnID)
	}
}

func testTakeover(t *testing.T, s server.Store) {
	mustAdd(t, s, "A", "B", "C", "D")
	mustPair(t, s, "A", "B")
	mustBegin(t, s, "C", "D")
	// A's new connection takes over: its pair ends.
	nA := dev("A")
	nA.ConnID = "c-A2"
	c, err := s.Add(nA, true)
	td := c.Replaced
	if err != nil || td == nil || c.Resumed || td.Device.ConnID != "c-A" || td.Pair == nil || td.Pair.Other("A") != "B" {
		t.Fatalf("takeover of A = %+v, %v", c, err)
	}
	wantState(t, s, "A::", "B::")
	if d, _ := s.Get("A"); d.ConnID != "c-A2" {
		t.Fatalf("A held by %q after takeover", d.ConnID)
	}
	// D's new connection takes over mid-handshake: the handshake ends.
	nD := dev("D")
	nD.ConnID = "c-D2"
	c, err = s.Add(nD, true)
	td = c.Replaced
	if err != nil || td == nil || len(td.Handshakes) != 1 || td.Handshakes[0].Src != "C" || td.Handshakes[0].Dst != "D" {
		t.Fatalf("takeover of D = %+v, %v", td, err)
	}
	wantState(t, s, "C::", "D::")
	if _, ok := s.Incoming("D"); ok {
		t.Fatalf("D is still being asked after takeover")
	}
	if _, err := s.EndPair(td.Handshakes[0].ID, true); !errors.Is(err, server.ErrStale) {
		t.Fatalf("EndPair of a cancelled handshake: %v, want ErrStale", err)
	}
	// The old connection can no longer remove the id.
	if _, ok := s.Remove("D", "c-D"); ok {
		t.Fatalf("the replaced connection removed D")
	}
}

func testRemoveOnlyByHolder(t *testing.T, s server.Store) {
	mustAdd(t, s, "A")
	if _, ok := s.Remove("A", "c-someone-else"); ok {
		t.Fatalf("Remove by another connection succeeded")
	}
	if _, ok := s.Remove("Z", "c-Z"); ok {
		t.Fatalf("Remove of an unknown id succeeded")
	}
	if _, ok := s.Get("A"); !ok {
		t.Fatalf("A gone")
	}
}

func testBeginPairRefusals(t *testing.T, s server.Store) {
	mustAdd(t, s, "A", "B", "C", "D", "E")
	_, err := s.BeginPair("A", "A")
	wantCode(t, "pair with self", err, protocol.CodeSelf)
	_, err = s.BeginPair("A", "Z")
	wantCode(t, "pair with an unknown id", err, protocol.CodeOffline)
	_, err = s.BeginPair("Z", "A")
	wantCode(t, "pair from an unknown id", err, protocol.CodeOffline)

	mustPair(t, s, "A", "B")
	res, err := s.BeginPair("A", "B")
	if err != nil || !res.Already || res.Handshake != nil || res.Pair != nil {
		t.Fatalf("asking its own peer again = %+v, %v; want Already", res, err)
	}
	res, err = s.BeginPair("B", "A")
	if err != nil || !res.Already {
		t.Fatalf("the other side asking again = %+v, %v; want Already", res, err)
	}
	_, err = s.BeginPair("A", "C")
	wantCode(t, "paired source", err, protocol.CodeBusy)
	_, err = s.BeginPair("C", "A")
	wantCode(t, "paired target", err, protocol.CodeBusy)

	mustBegin(t, s, "C", "D")
	_, err = s.BeginPair("C", "E")
	wantCode(t, "a source already asking", err, protocol.CodeBusy)
	_, err = s.BeginPair("D", "E")
	wantCode(t, "a source being asked", err, protocol.CodeBusy)
	_, err = s.BeginPair("E", "D")
	wantCode(t, "a target being asked", err, protocol.CodeBusy)
	_, err = s.BeginPair("E", "C")
	wantCode(t, "a target asking", err, protocol.CodeBusy)
	wantState(t, s, "A:B:", "B:A:", "C::D", "D::C", "E::")
}

func testHandshake(t *testing.T, s server.Store) {
	mustAdd(t, s, "A", "B", "C", "D")
	hs := mustBegin(t, s, "A", "B")
	if hs.Src != "A" || hs.Dst != "B" || hs.ID == 0 {
		t.Fatalf("handshake %+v", hs)
	}
	wantState(t, s, "A::B", "B::A")
	if in, ok := s.Incoming("B"); !ok || in != hs {
		t.Fatalf("Incoming(B) = %+v, %v; want %+v", in, ok, hs)
	}
	if _, ok := s.Incoming("A"); ok {
		t.Fatalf("Incoming(A): the asker is not being asked")
	}
	out, err := s.EndPair(hs.ID, true)
	if err != nil || out.Handshake != hs || out.Pair == nil || out.Pair.A != "A" || out.Pair.B != "B" || out.Pair.Since.IsZero() {
		t.Fatalf("EndPair accept = %+v, %v", out, err)
	}
	wantState(t, s, "A:B:", "B:A:")
	if ps := s.Pairs(); len(ps) != 1 || ps[0].A != "A" || ps[0].B != "B" {
		t.Fatalf("Pairs = %+v", ps)
	}
	if _, ok := s.Incoming("B"); ok {
		t.Fatalf("B still being asked after the answer")
	}

	hs2 := mustBegin(t, s, "C", "D")
	if hs2.ID == hs.ID {
		t.Fatalf("handshake ids repeat: %d", hs.ID)
	}
	out, err = s.EndPair(hs2.ID, false)
	if err != nil || out.Pair != nil || out.Handshake != hs2 {
		t.Fatalf("EndPair refuse = %+v, %v", out, err)
	}
	wantState(t, s, "C::", "D::")
}

func testEndPairOnce(t *testing.T, s server.Store) {
	mustAdd(t, s, "A", "B")
	hs := mustBegin(t, s, "A", "B")
	if _, err := s.EndPair(hs.ID, false); err != nil {
		t.Fatalf("EndPair: %v", err)
	}
	for _, accept := range []bool{true, false} {
		if _, err := s.EndPair(hs.ID, accept); !errors.Is(err, server.ErrStale) {
			t.Fatalf("second EndPair(%v) = %v, want ErrStale", accept, err)
		}
	}
	if _, err := s.EndPair(hs.ID+1000, true); !errors.Is(err, server.ErrStale) {
		t.Fatalf("EndPair of an unknown handshake = %v, want ErrStale", err)
	}
	wantState(t, s, "A::", "B::")
}

func testCrossed(t *testing.T, s server.Store) {
	mustAdd(t, s, "A", "B")
	first := mustBegin(t, s, "A", "B")
	res, err := s.BeginPair("B", "A")
	if err != nil || res.Pair == nil || res.Crossed == nil || *res.Crossed != first || res.Handshake != nil {
		t.Fatalf("crossed BeginPair = %+v, %v; want a pair that settles %+v", res, err, first)
	}
	if res.Pair.A != "A" || res.Pair.B != "B" {
		t.Fatalf("crossed pair %+v: the earlier asker is A", res.Pair)
	}
	wantState(t, s, "A:B:", "B:A:")
	if _, err := s.EndPair(first.ID, true); !errors.Is(err, server.ErrStale) {
		t.Fatalf("EndPair of the crossed handshake = %v, want ErrStale", err)
	}
}

func testUnpair(t *testing.T, s server.Store) {
	mustAdd(t, s, "A", "B")
	if _, ok := s.Unpair("A"); ok {
		t.Fatalf("Unpair of an unpaired device reported a pair")
	}
	mustPair(t, s, "A", "B")
	p, ok := s.Unpair("B")
	if !ok || p.A != "A" || p.B != "B" {
		t.Fatalf("Unpair = %+v, %v", p, ok)
	}
	wantState(t, s, "A::", "B::")
	if len(s.Pairs()) != 0 {
		t.Fatalf("Pairs after Unpair: %+v", s.Pairs())
	}
	if _, ok := s.Unpair("A"); ok {
		t.Fatalf("second Unpair reported a pair")
	}
	mustPair(t, s, "B", "A") // both free to pair again, either way round
}

func testRemoveEnds(t *testing.T, s server.Store) {
	mustAdd(t, s, "A", "B", "C", "D", "E")
	mustPair(t, s, "A", "B")
	td, ok := s.Remove("A", "c-A")
	if !ok || td.Pair == nil || td.Pair.Other("A") != "B" {
		t.Fatalf("Remove of a paired device = %+v, %v", td, ok)
	}
	wantState(t, s, "B::")

	// The asked device leaving ends the request.
	hs := mustBegin(t, s, "C", "D")
	td, ok = s.Remove("D", "c-D")
	if !ok || len(td.Handshakes) != 1 || td.Handshakes[0] != hs {
		t.Fatalf("Remove of an asked device = %+v, %v", td, ok)
	}
	wantState(t, s, "C::")
	// And the asker leaving ends its request too.
	hs = mustBegin(t, s, "E", "C")
	td, ok = s.Remove("E", "c-E")
	if !ok || len(td.Handshakes) != 1 || td.Handshakes[0] != hs {
		t.Fatalf("Remove of an asking device = %+v, %v", td, ok)
	}
	wantState(t, s, "C::")
	if _, ok := s.Incoming("C"); ok {
		t.Fatalf("C still asked after its asker left")
	}
}

func testEndPairAfterRemoval(t *testing.T, s server.Store) {
	mustAdd(t, s, "A", "B")
	hs := mustBegin(t, s, "A", "B")
	if _, ok := s.Remove("B", "c-B"); !ok {
		t.Fatalf("Remove(B) failed")
	}
	if out, err := s.EndPair(hs.ID, true); !errors.Is(err, server.ErrStale) || out.Pair != nil {
		t.Fatalf("EndPair after the target left = %+v, %v; want ErrStale", out, err)
	}
	wantState(t, s, "A::")
	if _, ok := s.Unpair("A"); ok {
		t.Fatalf("A paired with a device that left")
	}
}

func testSuspend(t *testing.T, s server.Store) {
	mustAdd(t, s, "A", "B", "C")
	mustPair(t, s, "A", "B")
	if _, _, ok := s.Suspend("A", "c-other"); ok {
		t.Fatalf("Suspend by another connection succeeded")
	}
	td, kept, ok := s.Suspend("A", "c-A")
	if !ok || !kept || td == nil || td.Pair != nil || len(td.Handshakes) != 0 {
		t.Fatalf("Suspend = %+v, %v, %v", td, kept, ok)
	}
	a, _ := s.Get("A")
	if !a.Away || a.Peer != "B" || a.Available() {
		t.Fatalf("A after Suspend: %+v", a)
	}
	wantState(t, s, "B:A:")
	if _, _, ok := s.Suspend("A", "c-A"); ok {
		t.Fatalf("a second Suspend succeeded")
	}
	// Its peer is still taken; pairing with either is BUSY.
	_, err := s.BeginPair("C", "B")
	wantCode(t, "pair with the peer of an away device", err, protocol.CodeBusy)
	_, err = s.BeginPair("C", "A")
	wantCode(t, "pair with an away device", err, protocol.CodeBusy)
	// Whoever claims the id resumes the pair, without takeover.
	back := dev("A")
	back.ConnID, back.Transport = "c-A2", "polling"
	c, err := s.Add(back, false)
	if err != nil || !c.Resumed || c.Peer != "B" || c.Replaced != nil {
		t.Fatalf("Add of an away id = %+v, %v", c, err)
	}
	a, _ = s.Get("A")
	if a.Away || a.ConnID != "c-A2" || a.Transport != "polling" {
		t.Fatalf("A after resuming: %+v", a)
	}
	wantState(t, s, "A:B:", "B:A:")
	if _, ok := s.Remove("A", "c-A"); ok {
		t.Fatalf("the dropped connection removed the resumed A")
	}
}

func testSuspendUnpaired(t *testing.T, s server.Store) {
	mustAdd(t, s, "A", "B")
	hs := mustBegin(t, s, "A", "B")
	td, kept, ok := s.Suspend("B", "c-B")
	if !ok || kept || td == nil || len(td.Handshakes) != 1 || td.Handshakes[0] != hs {
		t.Fatalf("Suspend of an unpaired device = %+v, %v, %v", td, kept, ok)
	}
	if _, there := s.Get("B"); there {
		t.Fatalf("an unpaired device was kept away")
	}
	wantState(t, s, "A::")
}

func testAwayRemoved(t *testing.T, s server.Store) {
	mustAdd(t, s, "A", "B")
	mustPair(t, s, "A", "B")
	if _, kept, _ := s.Suspend("A", "c-A"); !kept {
		t.Fatalf("A not kept")
	}
	td, ok := s.Remove("A", "c-A")
	if !ok || td.Pair == nil || td.Pair.Other("A") != "B" {
		t.Fatalf("Remove of an away device = %+v, %v", td, ok)
	}
	wantState(t, s, "B::")
	// Its id is anybody's now, and claimed fresh.
	if c, err := s.Add(dev("A"), false); err != nil || c.Resumed {
		t.Fatalf("Add after the window = %+v, %v", c, err)
	}
}

// testAwayUnpaired: an away device whose pair ended (unpaired, or its
// peer removed) keeps its record until the relay ends it, but nobody can
// ask it to pair meanwhile.
func testAwayUnpaired(t *testing.T, s server.Store) {
	mustAdd(t, s, "A", "B", "C")
	mustPair(t, s, "A", "B")
	if _, kept, _ := s.Suspend("A", "c-A"); !kept {
		t.Fatalf("A not kept")
	}
	if _, ok := s.Unpair("B"); !ok {
		t.Fatalf("Unpair of the peer of an away device failed")
	}
	_, err := s.BeginPair("C", "A")
	wantCode(t, "pair with an away device that lost its peer", err, protocol.CodeOffline)
	mustBegin(t, s, "C", "B")
}

func testConcurrentResume(t *testing.T, s server.Store) {
	mustAdd(t, s, "A", "B")
	mustPair(t, s, "A", "B")
	if _, kept, _ := s.Suspend("A", "c-A"); !kept {
		t.Fatalf("A not kept")
	}
	const n = 8
	var mu sync.Mutex
	resumed := 0
	parallel(n, func(i int) {
		d := dev("A")
		d.ConnID = fmt.Sprintf("c-A%d", i)
		c, err := s.Add(d, false)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil && c.Resumed:
			resumed++
		case protocol.CodeOf(err) != protocol.CodeIDInUse:
			t.Errorf("Add = %+v, %v", c, err)
		}
	})
	if resumed != 1 {
		t.Fatalf("%d connections resumed one away device", resumed)
	}
	wantState(t, s, "A:B:", "B:A:")
}

// parallel runs f(i) for i in [0, n) at once.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			f(i)
		}()
	}
	close(start)
	wg.Wait()
}

func testConcurrentAdd(t *testing.T, s server.Store) {
	const n = 16
	var mu sync.Mutex
	won := []string{}
	parallel(n, func(i int) {
		d := dev("A")
		d.ConnID = fmt.Sprintf("c-%d", i)
		_, err := s.Add(d, false)
		if err == nil {
			mu.Lock()
			won = append(won, d.ConnID)
			mu.Unlock()
		} else if protocol.CodeOf(err) != protocol.CodeIDInUse {
			t.Errorf("Add: %v", err)
		}
	})
	if len(won) != 1 {
		t.Fatalf("%d connections claimed one id: %v", len(won), won)
	}
	if d, _ := s.Get("A"); d.ConnID != won[0] || s.Len() != 1 {
		t.Fatalf("holder %q, want %q", d.ConnID, won[0])
	}
}

func testConcurrentCrossed(t *testing.T, s server.Store) {
	for round := range 20 {
		a, b := fmt.Sprintf("A%d", round), fmt.Sprintf("B%d", round)
		mustAdd(t, s, a, b)
		var res [2]server.BeginResult
		var errs [2]error
		parallel(2, func(i int) {
			if i == 0 {
				res[0], errs[0] = s.BeginPair(a, b)
			} else {
				res[1], errs[1] = s.BeginPair(b, a)
			}
		})
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: BeginPair %d: %v", round, i, err)
			}
		}
		// One asked, the other crossed it and the pair formed at once.
		var shake, pair int
		for _, r := range res {
			if r.Handshake != nil {
				shake++
			}
			if r.Pair != nil && r.Crossed != nil {
				pair++
			}
		}
		if shake != 1 || pair != 1 {
			t.Fatalf("round %d: results %+v", round, res)
		}
		wantState(t, s, a+":"+b+":", b+":"+a+":")
	}
}

func testConcurrentAsks(t *testing.T, s server.Store) {
	const n = 12
	mustAdd(t, s, "T")
	for i := range n {
		mustAdd(t, s, fmt.Sprintf("S%d", i))
	}
	var mu sync.Mutex
	var shakes []server.Handshake
	parallel(n, func(i int) {
		res, err := s.BeginPair(fmt.Sprintf("S%d", i), "T")
		switch {
		case err == nil && res.Handshake != nil:
			mu.Lock()
			shakes = append(shakes, *res.Handshake)
			mu.Unlock()
		case protocol.CodeOf(err) != protocol.CodeBusy:
			t.Errorf("BeginPair: %+v, %v", res, err)
		}
	})
	if len(shakes) != 1 {
		t.Fatalf("%d handshakes with one target: %+v", len(shakes), shakes)
	}
	if in, ok := s.Incoming("T"); !ok || in != shakes[0] {
		t.Fatalf("Incoming(T) = %+v, %v", in, ok)
	}
}

func testConcurrentRemoveAndEndPair(t *testing.T, s server.Store) {
	for round := range 20 {
		a, b := fmt.Sprintf("A%d", round), fmt.Sprintf("B%d", round)
		mustAdd(t, s, a, b)
		hs := mustBegin(t, s, a, b)
		var out server.Outcome
		var endErr error
		var td *server.Teardown
		parallel(2, func(i int) {
			if i == 0 {
				out, endErr = s.EndPair(hs.ID, true)
			} else {
				td, _ = s.Remove(b, "c-"+b)
			}
		})
		// Either the pair formed and the removal ended it, or the removal
		// came first and the answer was stale; never a pair with a device
		// that is gone.
		switch {
		case endErr == nil:
			if out.Pair == nil || td == nil || td.Pair == nil {
				t.Fatalf("round %d: accepted %+v, then removal %+v", round, out, td)
			}
		case errors.Is(endErr, server.ErrStale):
			if td == nil || len(td.Handshakes) != 1 {
				t.Fatalf("round %d: removal %+v", round, td)
			}
		default:
			t.Fatalf("round %d: EndPair: %v", round, endErr)
		}
		wantState(t, s, a+"::")
	}
}

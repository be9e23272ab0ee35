package cluster

import (
	"context"
	_ "embed" // the Lua scripts
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server"
)

// Key layout. With prefix P, every key starts with "{P}:" (one hash slot):
//
//	{P}:devs         SET   the ids of every device, live or away
//	{P}:dev:<id>     HASH  one device: id, conn, node, gen, addr, transport,
//	                       eio, at (ConnectedAt), texp (TokenExpires), and
//	                       what the store keeps: peer, pairing, away ("1"
//	                       or ""), out (the handshake it started) and in
//	                       (the one it is asked in), "" for none
//	{P}:node:<node>  SET   the ids of the devices node holds
//	{P}:pairs        HASH  one field per pair, keyed by the asker A:
//	                       "<since> <B>"
//	{P}:hs:<h>       HASH  handshake h under way: src, dst
//	{P}:shake_seq    STRING the last handshake id (INCR)
//
// Times are RFC 3339 with nanoseconds and the zone offset (time.Time's
// MarshalText), "" for the zero time: Get returns the instant Add stored,
// to the nanosecond, without its monotonic reading.

// The scripts' sources; each script is lua/common.lua followed by its own.
var (
	//go:embed lua/common.lua
	luaCommon string
	//go:embed lua/add.lua
	luaAdd string
	//go:embed lua/remove.lua
	luaRemove string
	//go:embed lua/suspend.lua
	luaSuspend string
	//go:embed lua/begin_pair.lua
	luaBeginPair string
	//go:embed lua/end_pair.lua
	luaEndPair string
	//go:embed lua/unpair.lua
	luaUnpair string
)

var (
	scriptAdd       = newScript(luaAdd)
	scriptRemove    = newScript(luaRemove)
	scriptSuspend   = newScript(luaSuspend)
	scriptBeginPair = newScript(luaBeginPair)
	scriptEndPair   = newScript(luaEndPair)
	scriptUnpair    = newScript(luaUnpair)
)

// script is a Store script: redis.Script knows its SHA1, for EVALSHA; src
// is for EVAL, when Redis does not have it.
type script struct {
	*redis.Script
	src string
}

func newScript(body string) script {
	src := luaCommon + "\n" + body
	return script{redis.NewScript(src), src}
}

// ErrRedis is wrapped by every error that comes from Redis rather than from
// the relay's rules: Redis unreachable, too slow, or refusing a command, or
// a reply the Store cannot read.
var ErrRedis = errors.New("redis store")

// StoreOptions configures a Store.
type StoreOptions struct {
	// Prefix names the store's keys, which all start with "{Prefix}:",
	// so that several clusters, or tests, can share one Redis; the braces
	// put them in one hash slot. Default: "p2p".
	Prefix string
	// Now stamps new pairs (Pair.Since). Default: time.Now.
	Now func() time.Time
	// Timeout bounds each call to Redis, retries included, when the
	// client has ContextTimeoutEnabled; without it, the client's own
	// timeouts decide (see the package comment). Default: 2s.
	Timeout time.Duration
	// Logger receives structured logs. Default: a logger that discards.
	Logger *slog.Logger
	// OnError, when set, is called with each error from Redis, as it
	// happens, from the goroutine that called the Store. It must not
	// block; the node uses it to fence itself (see the package comment).
	OnError func(error)
}

// Store is a server.Store kept in Redis, shared by every node that uses
// the same Redis and prefix. Its methods are safe for concurrent use.
// Create it with NewStore.
type Store struct {
	rdb     redis.UniversalClient
	root    string // "{prefix}:"
	devs    string // root + "devs"
	now     func() time.Time
	timeout time.Duration
	log     *slog.Logger
	onError func(error)

	failing atomic.Pointer[error] // the latest failure; nil once a call succeeds
}

var _ server.Store = (*Store)(nil)

// NewStore returns a Store on client. The caller owns client and must
// close it after the Store's last use.
func NewStore(client redis.UniversalClient, opts StoreOptions) *Store {
	if opts.Prefix == "" {
		opts.Prefix = "p2p"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	root := "{" + opts.Prefix + "}:"
	return &Store{
		rdb:     client,
		root:    root,
		devs:    root + "devs",
		now:     opts.Now,
		timeout: opts.Timeout,
		log:     opts.Logger,
		onError: opts.OnError,
	}
}

// Err returns the error of the latest call to Redis that failed, or nil
// when a call since succeeded (or none failed). It wraps ErrRedis.
func (s *Store) Err() error {
	if p := s.failing.Load(); p != nil {
		return *p
	}
	return nil
}

// Ping checks that Redis answers, and updates Err.
func (s *Store) Ping(ctx context.Context) error {
	return s.done("ping", s.rdb.Ping(ctx).Err())
}

// done records the outcome of a call to Redis (op names it) and returns
// err wrapped with ErrRedis, or nil.
func (s *Store) done(op string, err error) error {
	if err == nil {
		if s.failing.Load() != nil && s.failing.Swap(nil) != nil {
			s.log.Info("redis store answers again")
		}
		return nil
	}
	err = fmt.Errorf("%w: %s: %w", ErrRedis, op, err)
	if s.failing.Swap(&err) == nil {
		s.log.Error("redis store failing", "op", op, "err", err)
	}
	if s.onError != nil {
		s.onError(err)
	}
	return err
}

func (s *Store) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.timeout)
}

// evalCmd is an EVAL or EVALSHA that go-redis must not resend after a
// failure: the script may have run, and a second run would not do the same.
type evalCmd struct{ *redis.Cmd }

// NoRetry tells go-redis not to resend the command.
func (evalCmd) NoRetry() bool { return true }

// run runs sc with ARGV root, args..., and returns its reply.
func (s *Store) run(op string, sc script, args ...any) (*reply, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	v, err := s.eval(ctx, "evalsha", sc.Hash(), args)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// Not run: Redis does not have the script yet (or lost it).
		v, err = s.eval(ctx, "eval", sc.src, args)
	}
	if err := s.done(op, err); err != nil {
		return nil, err
	}
	r := &reply{op: op}
	r.v, r.err = asList(v)
	return r, nil
}

func (s *Store) eval(ctx context.Context, cmd, script string, args []any) (any, error) {
	a := make([]any, 0, 5+len(args))
	a = append(a, cmd, script, 1, s.devs, s.root)
	a = append(a, args...)
	c := redis.NewCmd(ctx, a...)
	_ = s.rdb.Process(ctx, evalCmd{c})
	return c.Result()
}

// Add claims d.ID for d.ConnID; see server.Store.
func (s *Store) Add(d server.Device, takeover bool) (server.Claim, error) {
	args := []any{d.ID, flag(takeover), d.Node}
	args = append(args, deviceFields(d)...)
	r, err := s.run("add", scriptAdd, args...)
	if err != nil {
		return server.Claim{}, err
	}
	var c server.Claim
	switch r.str() {
	case "added":
	case "in_use":
		return server.Claim{}, protocol.Errorf(protocol.CodeIDInUse, "device id %q is already connected", d.ID)
	case "replaced":
		c.Replaced = r.teardown()
	case "resumed":
		c.Resumed, c.PrevNode, c.Peer = true, r.str(), r.str()
	default:
		r.bad()
	}
	if err := r.check(s); err != nil {
		return server.Claim{}, err
	}
	return c, nil
}

// Remove drops id if connID still holds it; see server.Store.
func (s *Store) Remove(id, connID string) (*server.Teardown, bool) {
	r, err := s.run("remove", scriptRemove, id, connID)
	if err != nil {
		return nil, false
	}
	var td *server.Teardown
	switch r.str() {
	case "removed":
		td = r.teardown()
	case "not_held":
	default:
		r.bad()
	}
	if r.check(s) != nil {
		return nil, false
	}
	return td, td != nil
}

// Suspend handles the drop of connID; see server.Store.
func (s *Store) Suspend(id, connID string) (td *server.Teardown, kept, ok bool) {
	r, err := s.run("suspend", scriptSuspend, id, connID)
	if err != nil {
		return nil, false, false
	}
	switch r.str() {
	case "kept":
		td, kept = r.teardown(), true
	case "removed":
		td = r.teardown()
	case "not_held":
	default:
		r.bad()
	}
	if r.check(s) != nil || td == nil {
		return nil, false, false
	}
	return td, kept, true
}

// Get returns one device: what Add stored, times to the nanosecond, with
// the fields the store keeps.
func (s *Store) Get(id string) (server.Device, bool) {
	ctx, cancel := s.ctx()
	defer cancel()
	m, err := s.rdb.HGetAll(ctx, s.root+"dev:"+id).Result()
	if s.done("get", err) != nil || len(m) == 0 {
		return server.Device{}, false
	}
	d, err := decodeDevice(m)
	if s.done("get", err) != nil {
		return server.Device{}, false
	}
	return d, true
}

// Devices returns every device, in no particular order; see the package
// comment for what it may miss.
func (s *Store) Devices() []server.Device {
	ctx, cancel := s.ctx()
	defer cancel()
	devs, err := s.devicesIn(ctx, s.devs, "")
	if s.done("devices", err) != nil {
		return nil
	}
	return devs
}

// DevicesOn returns the devices that node holds, live or away, in no
// particular order; see the package comment for what it may miss. The
// reaper of a lost node removes each with Remove(d.ID, d.ConnID), which
// leaves alone a device that came back on another node meanwhile.
func (s *Store) DevicesOn(node string) ([]server.Device, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	devs, err := s.devicesIn(ctx, s.root+"node:"+node, node)
	return devs, s.done("devices on node", err)
}

// readBatch is how many records Devices reads in one round trip.
const readBatch = 256

// devicesIn reads the records of the ids in set; with node set, only those
// of devices that node holds.
func (s *Store) devicesIn(ctx context.Context, set, node string) ([]server.Device, error) {
	ids, err := s.rdb.SMembers(ctx, set).Result()
	if err != nil {
		return nil, err
	}
	out := make([]server.Device, 0, len(ids))
	for len(ids) > 0 {
		n := min(len(ids), readBatch)
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.MapStringStringCmd, n)
		for i, id := range ids[:n] {
			cmds[i] = pipe.HGetAll(ctx, s.root+"dev:"+id)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, err
		}
		for _, c := range cmds {
			if len(c.Val()) == 0 {
				continue // removed since the ids were read
			}
			d, err := decodeDevice(c.Val())
			if err != nil {
				return nil, err
			}
			if node == "" || d.Node == node {
				out = append(out, d)
			}
		}
		ids = ids[n:]
	}
	return out, nil
}

// Len returns the number of devices.
func (s *Store) Len() int {
	ctx, cancel := s.ctx()
	defer cancel()
	n, err := s.rdb.SCard(ctx, s.devs).Result()
	if s.done("len", err) != nil {
		return 0
	}
	return int(n)
}

// Pairs returns every live pair, in no particular order.
func (s *Store) Pairs() []server.Pair {
	ctx, cancel := s.ctx()
	defer cancel()
	m, err := s.rdb.HGetAll(ctx, s.root+"pairs").Result()
	if s.done("pairs", err) != nil {
		return nil
	}
	out := make([]server.Pair, 0, len(m))
	for a, v := range m {
		p, err := decodePair(a, v)
		if s.done("pairs", err) != nil {
			return nil
		}
		out = append(out, p)
	}
	return out
}

// Peer returns the peer of id, if it is paired.
func (s *Store) Peer(id string) (string, bool) {
	ctx, cancel := s.ctx()
	defer cancel()
	peer, err := s.rdb.HGet(ctx, s.root+"dev:"+id, "peer").Result()
	if errors.Is(err, redis.Nil) {
		err = nil
	}
	if s.done("peer", err) != nil {
		return "", false
	}
	return peer, peer != ""
}

// Incoming returns the handshake in which id is being asked, if any. A
// device being asked has the asker as its pairing, so the record alone
// says.
func (s *Store) Incoming(id string) (server.Handshake, bool) {
	ctx, cancel := s.ctx()
	defer cancel()
	v, err := s.rdb.HMGet(ctx, s.root+"dev:"+id, "in", "pairing").Result()
	if s.done("incoming", err) != nil || len(v) != 2 {
		return server.Handshake{}, false
	}
	in, _ := v[0].(string)
	src, _ := v[1].(string)
	if in == "" {
		return server.Handshake{}, false
	}
	h, err := strconv.ParseUint(in, 10, 64)
	if s.done("incoming", err) != nil {
		return server.Handshake{}, false
	}
	return server.Handshake{ID: h, Src: src, Dst: id}, true
}

// BeginPair starts pairing src with dst; see server.Store.
func (s *Store) BeginPair(src, dst string) (server.BeginResult, error) {
	if src == dst {
		return server.BeginResult{}, protocol.Errorf(protocol.CodeSelf, "cannot pair with yourself")
	}
	r, err := s.run("begin pair", scriptBeginPair, src, dst, encodeTime(s.now()))
	if err != nil {
		return server.BeginResult{}, err
	}
	var res server.BeginResult
	var refusal *protocol.Error
	switch r.str() {
	case "shake":
		res.Handshake = &server.Handshake{ID: r.uint(), Src: src, Dst: dst}
	case "already":
		res.Already = true
	case "crossed":
		res.Crossed = &server.Handshake{ID: r.uint(), Src: dst, Dst: src}
		res.Pair = r.pair()
	case "src_offline":
		refusal = protocol.Errorf(protocol.CodeOffline, "device %q is not connected", src)
	case "dst_offline":
		refusal = protocol.Errorf(protocol.CodeOffline, "device %q is offline", dst)
	case "src_paired":
		refusal = protocol.Errorf(protocol.CodeBusy, "you are paired with %q: unregister first", r.str())
	case "dst_paired":
		refusal = protocol.Errorf(protocol.CodeBusy, "device %q is paired with another device", dst)
	case "src_asking":
		refusal = protocol.Errorf(protocol.CodeBusy, "your request to pair with %q is still under way", r.str())
	case "src_asked":
		refusal = protocol.Errorf(protocol.CodeBusy, "you are being asked to pair by %q: answer first", r.str())
	case "dst_pairing":
		refusal = protocol.Errorf(protocol.CodeBusy, "device %q is pairing with another device", dst)
	default:
		r.bad()
	}
	if err := r.check(s); err != nil {
		return server.BeginResult{}, err
	}
	if refusal != nil {
		return server.BeginResult{}, refusal
	}
	return res, nil
}

// EndPair settles handshake h; see server.Store.
func (s *Store) EndPair(h uint64, accept bool) (server.Outcome, error) {
	r, err := s.run("end pair", scriptEndPair, strconv.FormatUint(h, 10), flag(accept), encodeTime(s.now()))
	if err != nil {
		return server.Outcome{}, err
	}
	var out server.Outcome
	stale := false
	switch r.str() {
	case "settled":
		out.Handshake = server.Handshake{ID: h, Src: r.str(), Dst: r.str()}
		out.Pair = r.pair()
	case "stale":
		stale = true
	default:
		r.bad()
	}
	if err := r.check(s); err != nil {
		return server.Outcome{}, err
	}
	if stale {
		return server.Outcome{}, server.ErrStale
	}
	return out, nil
}

// Unpair ends id's pair and returns it.
func (s *Store) Unpair(id string) (server.Pair, bool) {
	r, err := s.run("unpair", scriptUnpair, id)
	if err != nil {
		return server.Pair{}, false
	}
	var p server.Pair
	found := false
	switch r.str() {
	case "unpaired":
		p, found = server.Pair{A: r.str(), B: r.str(), Since: r.time()}, true
	case "not_paired":
	default:
		r.bad()
	}
	if r.check(s) != nil {
		return server.Pair{}, false
	}
	return p, found
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return ""
}

// deviceFields returns the fields of d that the caller owns, as field,
// value pairs for HSET.
func deviceFields(d server.Device) []any {
	return []any{
		"id", d.ID,
		"conn", d.ConnID,
		"node", d.Node,
		"gen", strconv.Itoa(int(d.Gen)),
		"addr", d.Address,
		"transport", d.Transport,
		"eio", strconv.Itoa(d.EngineIO),
		"at", encodeTime(d.ConnectedAt),
		"texp", encodeTime(d.TokenExpires),
	}
}

// decodeDevice reads a device record (HGETALL).
func decodeDevice(m map[string]string) (server.Device, error) {
	d := server.Device{
		ID:        m["id"],
		ConnID:    m["conn"],
		Node:      m["node"],
		Address:   m["addr"],
		Transport: m["transport"],
		Peer:      m["peer"],
		Pairing:   m["pairing"],
		Away:      m["away"] == "1",
	}
	gen, err1 := strconv.Atoi(m["gen"])
	eio, err2 := strconv.Atoi(m["eio"])
	at, err3 := decodeTime(m["at"])
	texp, err4 := decodeTime(m["texp"])
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return server.Device{}, fmt.Errorf("device %q: %w", d.ID, err)
	}
	d.Gen, d.EngineIO, d.ConnectedAt, d.TokenExpires = protocol.Generation(gen), eio, at, texp
	return d, nil
}

// decodePair reads the pairs field of asker a: "<since> <b>".
func decodePair(a, v string) (server.Pair, error) {
	for i := range len(v) {
		if v[i] == ' ' {
			since, err := decodeTime(v[:i])
			return server.Pair{A: a, B: v[i+1:], Since: since}, err
		}
	}
	return server.Pair{}, fmt.Errorf("pair of %q: malformed %q", a, v)
}

func encodeTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	b, err := t.MarshalText()
	if err != nil {
		// A year outside [0, 9999]: keep the second, in the one format
		// that holds any year.
		return "@" + strconv.FormatInt(t.Unix(), 10)
	}
	return string(b)
}

func decodeTime(s string) (time.Time, error) {
	var t time.Time
	switch {
	case s == "":
		return t, nil
	case s[0] == '@':
		sec, err := strconv.ParseInt(s[1:], 10, 64)
		return time.Unix(sec, 0), err
	}
	err := t.UnmarshalText([]byte(s))
	return t, err
}

// reply reads a script's reply, an array, in order. Reading past its end
// or a value of the wrong type records the first error and returns zero
// values, so that no reply, however wrong, can panic.
type reply struct {
	op  string
	v   []any
	err error
}

func asList(v any) ([]any, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("reply %T, want an array", v)
	}
	return l, nil
}

func (r *reply) next() any {
	if r.err != nil {
		return nil
	}
	if len(r.v) == 0 {
		r.err = errors.New("reply too short")
		return nil
	}
	v := r.v[0]
	r.v = r.v[1:]
	return v
}

func (r *reply) str() string {
	v := r.next()
	if r.err != nil {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		r.err = fmt.Errorf("reply value %T, want a string", v)
	}
	return s
}

func (r *reply) list() *reply {
	v := r.next()
	l := &reply{op: r.op, err: r.err}
	if r.err == nil {
		l.v, l.err = asList(v)
		r.err = l.err
	}
	return l
}

func (r *reply) uint() uint64 {
	s := r.str()
	if r.err != nil {
		return 0
	}
	n, err := strconv.ParseUint(s, 10, 64)
	r.err = err
	return n
}

func (r *reply) time() time.Time {
	s := r.str()
	if r.err != nil {
		return time.Time{}
	}
	t, err := decodeTime(s)
	r.err = err
	return t
}

// bad records that the reply's status was not one the script returns.
func (r *reply) bad() {
	if r.err == nil {
		r.err = errors.New("unknown reply status")
	}
}

// pair reads a pair, {a, b, since}; nil for {}.
func (r *reply) pair() *server.Pair {
	l := r.list()
	if r.err != nil || len(l.v) == 0 {
		return nil
	}
	p := &server.Pair{A: l.str(), B: l.str(), Since: l.time()}
	r.err = l.err
	return p
}

// teardown reads {record, pair, handshakes}.
func (r *reply) teardown() *server.Teardown {
	l := r.list()
	rec := l.list()
	m := make(map[string]string, len(rec.v)/2)
	for len(rec.v) > 0 && rec.err == nil {
		k := rec.str()
		m[k] = rec.str()
	}
	td := &server.Teardown{Pair: l.pair()}
	for shakes := l.list(); len(shakes.v) > 0 && shakes.err == nil; {
		td.Handshakes = append(td.Handshakes, server.Handshake{ID: shakes.uint(), Src: shakes.str(), Dst: shakes.str()})
		l.err = shakes.err
	}
	if r.err = errors.Join(l.err, rec.err); r.err != nil {
		return nil
	}
	td.Device, r.err = decodeDevice(m)
	return td
}

// check returns the error met reading the reply, recorded as a failure.
func (r *reply) check(s *Store) error {
	if r.err == nil && len(r.v) > 0 {
		r.err = errors.New("reply too long")
	}
	if r.err != nil {
		return s.done(r.op, fmt.Errorf("script reply: %w", r.err))
	}
	return nil
}

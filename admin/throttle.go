package admin

import (
	"log/slog"
	"math"
	"net/netip"
	"sync"
	"time"

	timerate "golang.org/x/time/rate"
)

// authThrottle bounds the admin tokens one address may get wrong, on every
// surface together: each wrong token spends one from the address's budget
// (a burst, refilled at a steady rate), and while the budget is empty the
// address's attempts are refused without their token being looked at, so
// that guessing goes no faster than the refill. Refusals are logged
// aggregated: the first from an address at once, then at most one line per
// authLogEvery, saying how many there were since the last.
//
// Addresses are IPs (an IPv6 address counts by its /64). Behind a proxy
// every operator shares the proxy's address, and so its budget.
type authThrottle struct {
	limit timerate.Limit
	burst int
	log   *slog.Logger

	mu    sync.Mutex // guards addrs and swept
	addrs map[string]*addrAuth
	swept time.Time // when addrs was last swept for addresses to forget
}

// addrAuth is one address's budget and what is not yet logged of it.
type addrAuth struct {
	lim        *timerate.Limiter
	refused    uint64 // tokens refused since the last line (wrong or missing)
	throttled  uint64 // attempts refused unchecked since the last line
	lastReason string
	surfaces   [surfaceCount]bool // where the refusals since the last line came
	logged     time.Time          // when the last line was logged; zero before the first
}

const (
	// authLogEvery is the most often one address's refusals are logged.
	authLogEvery = 10 * time.Second
	// maxAuthAddrs bounds the addresses tracked; past it, addresses whose
	// budget is full again are forgotten, and if none is, newcomers share
	// one budget.
	maxAuthAddrs = 10000
	// overflowKey is the budget the newcomers share.
	overflowKey = "other addresses"
)

func newAuthThrottle(perSecond float64, burst int, log *slog.Logger) *authThrottle {
	return &authThrottle{limit: timerate.Limit(perSecond), burst: burst, log: log, addrs: make(map[string]*addrAuth)}
}

// addrKey is the budget's key of a remote address ("ip:port" or "ip").
func addrKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if ap, perr := netip.ParseAddrPort(addr); perr == nil {
		ip, err = ap.Addr(), nil
	}
	if err != nil {
		return addr
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// entry returns the budget of addr's key. a.mu must be held.
func (a *authThrottle) entry(key string, now time.Time) *addrAuth {
	if e, ok := a.addrs[key]; ok {
		return e
	}
	if len(a.addrs) >= maxAuthAddrs && now.Sub(a.swept) >= time.Second {
		a.forget(now) // at most once a second: a sweep reads every address
	}
	if len(a.addrs) >= maxAuthAddrs {
		key = overflowKey
		if e, ok := a.addrs[key]; ok {
			return e
		}
	}
	e := &addrAuth{lim: timerate.NewLimiter(a.limit, a.burst)}
	a.addrs[key] = e
	return e
}

// forget drops the addresses with a full budget and nothing left to log.
// a.mu must be held.
func (a *authThrottle) forget(now time.Time) {
	a.swept = now
	for k, e := range a.addrs {
		if e.refused == 0 && e.throttled == 0 && now.Sub(e.logged) >= authLogEvery && e.lim.TokensAt(now) >= float64(a.burst) {
			delete(a.addrs, k)
		}
	}
}

// admit reports whether addr may present a token now. When it may not,
// the attempt is counted, and retry says how long until it may.
func (a *authThrottle) admit(addr string, surface int, now time.Time) (retry time.Duration, ok bool) {
	key := addrKey(addr)
	a.mu.Lock()
	defer a.mu.Unlock()
	e, known := a.addrs[key]
	if !known {
		return 0, true // no failure yet: a full budget
	}
	tokens := e.lim.TokensAt(now)
	if tokens >= 1 {
		return 0, true
	}
	e.throttled++
	e.surfaces[surface] = true
	a.maybeLog(key, e, now)
	return time.Duration(math.Ceil((1 - tokens) / float64(a.limit) * float64(time.Second))), false
}

// refused records a token refused from addr: a wrong one (spend) takes
// one from the address's budget; a missing one guesses nothing and takes
// none, but is logged all the same.
func (a *authThrottle) refused(addr string, surface int, reason string, spend bool, now time.Time) {
	key := addrKey(addr)
	a.mu.Lock()
	defer a.mu.Unlock()
	if !spend {
		if _, known := a.addrs[key]; !known && len(a.addrs) >= maxAuthAddrs {
			a.log.Warn("admin token refused", "addr", key, "reason", reason) // untracked: log it plainly
			return
		}
	}
	e := a.entry(key, now)
	if spend {
		e.lim.AllowN(now, 1)
	}
	e.refused++
	e.lastReason = reason
	e.surfaces[surface] = true
	a.maybeLog(key, e, now)
}

// maybeLog logs what key's refusals are since the last line, unless that
// was less than authLogEvery ago. a.mu must be held.
func (a *authThrottle) maybeLog(key string, e *addrAuth, now time.Time) {
	if !e.logged.IsZero() && now.Sub(e.logged) < authLogEvery {
		return
	}
	var surfaces []string
	for i, on := range e.surfaces {
		if on {
			surfaces = append(surfaces, surfaceNames[i])
		}
	}
	attrs := []any{"addr", key, "refused", e.refused, "throttled", e.throttled, "surfaces", surfaces}
	if e.lastReason != "" {
		attrs = append(attrs, "last_reason", e.lastReason)
	}
	if !e.logged.IsZero() {
		attrs = append(attrs, "since", now.Sub(e.logged).Round(time.Second).String())
	}
	a.log.Warn("admin token refused", attrs...)
	e.logged = now
	e.refused, e.throttled, e.lastReason, e.surfaces = 0, 0, "", [surfaceCount]bool{}
}

// flush logs the refusals left unlogged for authLogEvery, and forgets the
// addresses that have nothing more to say. The hub calls it once a second.
func (a *authThrottle) flush(now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, e := range a.addrs {
		if e.refused > 0 || e.throttled > 0 {
			a.maybeLog(k, e, now)
		}
	}
	a.forget(now)
}

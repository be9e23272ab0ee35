package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/p2prelay/p2prelay/auth"
	"github.com/p2prelay/p2prelay/internal/testkit"
	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server"
	"github.com/p2prelay/p2prelay/server/socketio"
)

const secret = "a-device-secret-of-some-length"

func mint(t *testing.T, id string, ttl time.Duration) string {
	t.Helper()
	tok, err := auth.Mint(secret, id, ttl, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func tokenRelay(t *testing.T) *testkit.Relay {
	t.Helper()
	v, err := auth.NewVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	return start(t, server.Config{Tokens: v})
}

func dialToken(t *testing.T, r *testkit.Relay, id, token string, inAuth bool) (*testkit.Device, error) {
	q := url.Values{"clientId": {id}}
	o := testkit.DialOptions{Query: q}
	switch {
	case token == "":
	case inAuth:
		o.Auth = map[string]any{"token": token}
	default:
		q.Set("token", token)
	}
	return testkit.TryDial(t, r.URL, o)
}

func TestDeviceTokens(t *testing.T) {
	r := tokenRelay(t)
	otherSecret, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject: "A", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour)),
	}).SignedString([]byte("another-secret-entirely"))
	expired, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject: "A", ExpiresAt: jwt.NewNumericDate(time.Now().Add(-time.Minute)),
	}).SignedString([]byte(secret))
	noExpiry, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Subject: "A"}).SignedString([]byte(secret))
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.RegisteredClaims{
		Subject: "A", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour)),
	}).SignedString(jwt.UnsafeAllowNoneSignatureType)

	bad := map[string]string{
		"missing":         "",
		"malformed":       "not-a-jwt",
		"wrong signature": otherSecret,
		"expired":         expired,
		"for another id":  mint(t, "B", time.Hour),
		"no expiry":       noExpiry,
		"alg none":        none,
	}
	for name, tok := range bad {
		for _, inAuth := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s auth=%v", name, inAuth), func(t *testing.T) {
				_, err := dialToken(t, r, "A", tok, inAuth)
				if err == nil || !strings.HasPrefix(err.Error(), "UNAUTHORIZED:") {
					t.Fatalf("got %v, want UNAUTHORIZED", err)
				}
			})
		}
	}
	if _, err := dialToken(t, r, "A", mint(t, "A", time.Hour), false); err != nil {
		t.Fatalf("token in the query: %v", err)
	}
	if _, err := dialToken(t, r, "B", mint(t, "B", time.Hour), true); err != nil {
		t.Fatalf("token in the auth: %v", err)
	}
	if st := r.Relay.Stats(); st.Refusals[protocol.CodeUnauthorized] != uint64(2*len(bad)) {
		t.Fatalf("UNAUTHORIZED refusals counted %d, want %d", st.Refusals[protocol.CodeUnauthorized], 2*len(bad))
	}
}

func TestReclaimIDWithToken(t *testing.T) {
	r := tokenRelay(t)
	a1, err := dialToken(t, r, "A", mint(t, "A", time.Hour), true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := dialToken(t, r, "B", mint(t, "B", time.Hour), true)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Pair(t, a1, b, "B", "A")

	// Without a token, an id in use cannot be had.
	if _, err := dialToken(t, r, "A", "", false); err == nil || !strings.HasPrefix(err.Error(), "ID_IN_USE:") {
		t.Fatalf("no token for A in use: %v, want ID_IN_USE", err)
	}
	// Nor with somebody else's token.
	if _, err := dialToken(t, r, "A", mint(t, "B", time.Hour), true); err == nil || !strings.HasPrefix(err.Error(), "UNAUTHORIZED:") {
		t.Fatalf("B's token for A: %v, want UNAUTHORIZED", err)
	}
	// With its own token the device takes its id back, whatever the
	// duplicate policy; the old connection is told and closed, its peer told.
	a2, err := dialToken(t, r, "A", mint(t, "A", time.Hour), true)
	if err != nil {
		t.Fatalf("reclaim: %v", err)
	}
	if e := a1.ServerError(); e.Code != protocol.CodeTakenOver {
		t.Fatalf("old connection told %v", e)
	}
	<-a1.Closed()
	b.Next(protocol.EventDisconnect)
	testkit.Pair(t, a2, b, "B", "A")
}

func TestMaxDevices(t *testing.T) {
	r := start(t, server.Config{MaxDevices: 2})
	testkit.Dial(t, r.URL, "A")
	b := testkit.Dial(t, r.URL, "B")
	_, err := testkit.TryDial(t, r.URL, testkit.DialOptions{Query: url.Values{"clientId": {"C"}}})
	if err == nil || !strings.HasPrefix(err.Error(), "SERVER_FULL:") {
		t.Fatalf("third device: %v, want SERVER_FULL", err)
	}
	b.Close()
	waitFor(t, func() bool { return len(r.Relay.DeviceIDs()) == 1 })
	testkit.Dial(t, r.URL, "C")
}

func pairedRelay(t *testing.T, cfg server.Config) (*testkit.Relay, *testkit.Device, *testkit.Device) {
	t.Helper()
	r := start(t, cfg)
	a := testkit.Dial(t, r.URL, "A")
	b := testkit.Dial(t, r.URL, "B")
	testkit.Pair(t, a, b, "B", "A")
	return r, a, b
}

func emitTo(target, event string, args ...any) map[string]any {
	return map[string]any{"targetClientId": target, "event": event, "args": args}
}

func TestPayloadLimit(t *testing.T) {
	_, a, b := pairedRelay(t, server.Config{MaxPayload: 1000})
	a.Emit(protocol.EventEmit, emitTo("B", "big", strings.Repeat("x", 1100)))
	if e := a.ServerError(); e.Code != protocol.CodeTooLarge {
		t.Fatalf("got %v, want TOO_LARGE", e)
	}
	v := a.Request(protocol.EventEmitAck, emitTo("B", "big", []byte(strings.Repeat("y", 1100))))
	if e := protocol.ParseAckError(v); e == nil || e.Code != protocol.CodeTooLarge {
		t.Fatalf("binary over the limit: ack %v", v)
	}
	a.ServerError()
	// A deeply nested payload is refused, whatever its size.
	var deep any = "leaf"
	for i := 0; i < server.MaxDepth+5; i++ {
		deep = []any{deep}
	}
	a.Emit(protocol.EventEmit, emitTo("B", "deep", deep))
	if e := a.ServerError(); e.Code != protocol.CodeBadRequest {
		t.Fatalf("deep: %v", e)
	}
	// An answer over the limit is not piped back either.
	res := make(chan []any, 1)
	go func() { res <- a.Request(protocol.EventEmitAck, emitTo("B", "q")) }()
	b.Next("q").Ack(strings.Repeat("z", 2000))
	if e := protocol.ParseAckError(<-res); e == nil || e.Code != protocol.CodeTooLarge {
		t.Fatal("oversized answer was piped back")
	}
	// Just under the limit goes through, and B saw none of the above.
	a.Emit(protocol.EventEmit, emitTo("B", "fits", strings.Repeat("x", 900)))
	b.Next("fits")
	for _, n := range b.Names() {
		t.Errorf("B got %s", n)
	}
}

func TestRateLimit(t *testing.T) {
	r, a, b := pairedRelay(t, server.Config{Rate: 5, Burst: 5})
	c := testkit.Dial(t, r.URL, "C")
	d := testkit.Dial(t, r.URL, "D")
	testkit.Pair(t, c, d, "D", "C")
	limited := 0
	for i := 0; i < 20; i++ {
		v := a.Request(protocol.EventEmit, emitTo("B", "flood", i))
		if e := protocol.ParseAckError(v); e != nil && e.Code == protocol.CodeRateLimited {
			limited++
		}
	}
	if limited < 10 {
		t.Fatalf("only %d of 20 flood requests were limited", limited)
	}
	// The flood never reached past the limit, and the other pair is fine.
	for i := 0; i < 4; i++ {
		c.Emit(protocol.EventEmit, emitTo("D", "calm", i))
		d.Next("calm")
	}
	if n := len(b.Names()); n > 10 {
		t.Fatalf("B received %d flood events", n)
	}
}

func TestPairingRateLimit(t *testing.T) {
	r := start(t, server.Config{PairRate: 1, PairBurst: 2})
	a := testkit.Dial(t, r.URL, "A")
	codes := map[protocol.Code]int{}
	for i := 0; i < 6; i++ {
		if v := a.Request(protocol.EventRegister, "nobody"); v[0] != false {
			t.Fatalf("answered %v", v)
		}
		codes[a.ServerError().Code]++
	}
	if codes[protocol.CodeRateLimited] < 3 || codes[protocol.CodeOffline] < 2 {
		t.Fatalf("codes %v, want OFFLINE then RATE_LIMITED", codes)
	}
}

func TestPendingAckLimit(t *testing.T) {
	r, a, b := pairedRelay(t, server.Config{MaxPendingAcks: 3, AckTimeout: 10 * time.Second})
	for i := 0; i < 3; i++ {
		go a.TryRequest(protocol.EventEmitAck, emitTo("B", "hold", i))
		b.Next("hold")
	}
	v := a.Request(protocol.EventEmitAck, emitTo("B", "hold", 3))
	if e := protocol.ParseAckError(v); e == nil || e.Code != protocol.CodeRateLimited {
		t.Fatalf("fourth pending ack: %v, want RATE_LIMITED", v)
	}
	// The refused message counts as a refusal, not as relayed.
	if st := r.Relay.Stats(); st.Messages != 3 || st.Refusals[protocol.CodeRateLimited] != 1 {
		t.Fatalf("messages %d, RATE_LIMITED refusals %d; want 3 and 1", st.Messages, st.Refusals[protocol.CodeRateLimited])
	}
}

func TestAllowedOrigins(t *testing.T) {
	// Written with a trailing slash, which the Origin header never has.
	r := testkit.StartRelay(t, socketio.ServiceConfig{AllowedOrigins: []string{"https://app.example/"}})
	var allowOrigin string
	get := func(origin string) int {
		req, _ := http.NewRequest("GET", r.URL+"/socket.io/?EIO=4&transport=polling", nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		allowOrigin = resp.Header.Get("Access-Control-Allow-Origin")
		return resp.StatusCode
	}
	if c := get("https://evil.example"); c != http.StatusForbidden || allowOrigin != "" {
		t.Fatalf("other origin: %d, Access-Control-Allow-Origin %q; want 403 and none", c, allowOrigin)
	}
	if c := get("https://app.example"); c != http.StatusOK || allowOrigin != "https://app.example" {
		t.Fatalf("allowed origin: %d, Access-Control-Allow-Origin %q", c, allowOrigin)
	}
	if c := get(""); c != http.StatusOK {
		t.Fatalf("no origin: %d", c)
	}
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key, pool := selfSigned(t, dir)
	svc, err := socketio.NewService(socketio.ServiceConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.ServeTLS(ln, cert, key) }()
	defer func() {
		_ = svc.Shutdown(t.Context())
		<-done
	}()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatalf("HTTPS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz over TLS: %d", resp.StatusCode)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "p2pd test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(priv)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
}

// slowVerifier accepts every token after a wait.
type slowVerifier struct{ wait time.Duration }

func (v slowVerifier) Verify(token, id string) (time.Time, error) {
	time.Sleep(v.wait)
	return time.Time{}, nil
}

// TestConnectionLostDuringAdmission: a connection that ends while the
// relay is still admitting its device (here, its heartbeat times out
// during a slow token check) leaves no device behind to hold the id.
func TestConnectionLostDuringAdmission(t *testing.T) {
	events := make(chan server.Event, 16)
	r := testkit.StartRelay(t, socketio.ServiceConfig{
		Relay: server.Config{
			Tokens:   slowVerifier{wait: 400 * time.Millisecond},
			Observer: server.ObserverFunc(func(e server.Event) { events <- e }),
		},
		PingInterval: 50 * time.Millisecond,
		PingTimeout:  50 * time.Millisecond,
	})
	u := "ws" + strings.TrimPrefix(r.URL, "http") + "/socket.io/?EIO=4&transport=websocket&clientId=A&token=t"
	c, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, open, err := c.ReadMessage(); err != nil || !strings.HasPrefix(string(open), "0{") {
		t.Fatalf("open packet %q, %v", open, err)
	}
	// Ask to join and never answer a ping: the relay drops the connection
	// while the token check still runs.
	if err := c.WriteMessage(websocket.TextMessage, []byte("40")); err != nil {
		t.Fatal(err)
	}
	for _, want := range []server.EventKind{server.DeviceConnected, server.DeviceDisconnected} {
		select {
		case e := <-events:
			if e.Kind != want || e.ID != "A" {
				t.Fatalf("event %s %s, want %s A", e.Kind, e.ID, want)
			}
		case <-time.After(testkit.Wait):
			t.Fatalf("no %s event: the id A stays held by a connection that is gone", want)
		}
	}
	if _, held := r.Relay.Store().Get("A"); held {
		t.Fatal("the id A is still held")
	}
}

package socketio

import (
	"bytes"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	ws "github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// upgrade serves one websocket upgrade on a loopback server that start
// starts, and returns both ends.
func upgrade(t *testing.T, start func(*httptest.Server)) (server, client *ws.Conn) {
	t.Helper()
	upgraded := make(chan *ws.Conn, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		c, err := (&ws.Upgrader{}).Upgrade(rw, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		upgraded <- c
	}))
	start(srv)
	t.Cleanup(srv.Close)
	dialer := ws.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // the test's own certificate
	client, _, err := dialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	server = <-upgraded
	t.Cleanup(func() {
		client.Close()
		server.Close()
	})
	return server, client
}

// TestOwnTransportOnlyWhereWritesNeverWait: the relay's transport serves
// the connections of Service's listeners, with or without TLS; any other
// gets the library's.
func TestOwnTransportOnlyWhereWritesNeverWait(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(*httptest.Server)
		want  bool
	}{
		{"plain http.Server", (*httptest.Server).Start, false},
		{"Service's listener", func(s *httptest.Server) {
			s.Listener = coalescingListener{s.Listener}
			s.Start()
		}, true},
		{"Service's listener, TLS", func(s *httptest.Server) {
			s.Listener = coalescingListener{s.Listener}
			s.StartTLS()
		}, true},
	} {
		server, _ := upgrade(t, tc.start)
		if got := writesNeverWait(&types.WebSocketConn{Conn: server}); got != tc.want {
			t.Errorf("%s: writesNeverWait = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestFrameLengths writes messages at every boundary of the websocket
// length encoding and reads them back with the websocket library.
func TestFrameLengths(t *testing.T) {
	server, client := upgrade(t, (*httptest.Server).Start)
	w := &wsTransport{conn: &types.WebSocketConn{Conn: server}}

	for _, tc := range []struct {
		op      int
		prefix  byte
		payload int
	}{
		{ws.TextMessage, '4', 0},
		{ws.TextMessage, '4', 124},
		{ws.TextMessage, '4', 125},
		{ws.TextMessage, 0, 125},
		{ws.TextMessage, 0, 126},
		{ws.BinaryMessage, 0, 0xffff},
		{ws.TextMessage, '4', 0xffff},
		{ws.BinaryMessage, 0, 0x10000},
		{ws.TextMessage, '4', 200_000},
	} {
		payload := bytes.Repeat([]byte("ab\x00é"), tc.payload/5+1)[:tc.payload]
		if err := w.frame(byte(tc.op), tc.prefix, payload); err != nil {
			t.Fatal(err)
		}
		op, got, err := client.ReadMessage()
		if err != nil {
			t.Fatalf("payload %d: %v", tc.payload, err)
		}
		want := payload
		if tc.prefix != 0 {
			want = append([]byte{tc.prefix}, payload...)
		}
		if op != tc.op || !bytes.Equal(got, want) {
			t.Errorf("payload %d prefix %q: read type %d, %d bytes; want type %d, %d bytes", tc.payload, tc.prefix, op, len(got), tc.op, len(want))
		}
	}
}

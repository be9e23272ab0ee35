package server

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	ws "github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// TestFrameLengths writes messages at every boundary of the websocket
// length encoding and reads them back with the websocket library.
func TestFrameLengths(t *testing.T) {
	upgraded := make(chan *ws.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		c, err := (&ws.Upgrader{}).Upgrade(rw, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		upgraded <- c
	}))
	defer srv.Close()
	client, _, err := ws.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server := <-upgraded
	defer server.Close()
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

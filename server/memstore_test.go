package server_test

import (
	"testing"

	"github.com/p2prelay/p2prelay/server"
	"github.com/p2prelay/p2prelay/server/storetest"
)

func TestMemoryStoreContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) server.Store { return server.NewMemoryStore(nil) })
}

package cluster

import (
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/p2prelay/p2prelay/internal/redistest"
	"github.com/p2prelay/p2prelay/server"
	"github.com/p2prelay/p2prelay/server/storetest"
)

// backend is a Redis for the tests: miniredis (in-process, fast) or a
// real redis-server (skipped without one, outside CI).
type backend struct {
	name   string
	client func(t testing.TB) *redis.Client
}

var backends = []backend{
	{"miniredis", func(t testing.TB) *redis.Client {
		return redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	}},
	{"redis", func(t testing.TB) *redis.Client {
		return redistest.Start(t).Client(t)
	}},
}

// forEach runs f against each backend, as subtests.
func forEach(t *testing.T, f func(t *testing.T, rdb *redis.Client)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b.client(t)) })
	}
}

// TestContract runs the contract every Store keeps. The subtests share one
// Redis, each under its own prefix.
func TestContract(t *testing.T) {
	forEach(t, func(t *testing.T, rdb *redis.Client) {
		storetest.Run(t, func(t *testing.T) server.Store {
			return NewStore(rdb, StoreOptions{Prefix: t.Name()})
		})
	})
}

// Package cluster lets several p2pd nodes share one relay state in Redis.
// Store is the Redis server.Store: the devices, pairs and pairing
// handshakes of every node, with the same semantics as the in-memory
// store (server.NewMemoryStore), checked by the same contract suite
// (server/storetest).
//
// # Atomic steps
//
// Every Store method that changes state is one Lua script (cluster/lua),
// run with EVALSHA, so it is one atomic step on the Redis primary: no other
// node sees half of it. The scripts are not idempotent (a second Add of the
// same connection would be refused as ID_IN_USE), so the Store tells
// go-redis never to resend them: a script whose reply was lost, to a
// timeout or a dropped connection, fails with an error instead of running
// twice. Methods that only read use plain commands.
//
// # What a reader sees
//
// Get, Peer, Incoming, Len and Pairs are one command each: each sees the
// state between two steps, as the memory store's readers do. Devices and
// DevicesOn read the set of ids, then each record: every Device is whole
// and was true at some step, but the list is not a snapshot. A device
// added after the ids were read is missing, one removed since is left
// out, and two records may come from different steps (A paired with B,
// while B's record, read a moment earlier, shows no peer). They are for
// listings and for the reaper, which checks again with Remove; decisions
// use the atomic methods. All of this assumes reads go to the primary: a
// client that reads from replicas sees older states.
//
// # When Redis fails
//
// Add, BeginPair, EndPair and DevicesOn return errors that wrap ErrRedis.
// The other methods have no error result: when Redis cannot be reached,
// times out or refuses a command, they answer as if there were nothing to
// find (Get, Peer and Incoming report false, Devices and Pairs nil, Len
// 0; Remove, Suspend and Unpair report false and change nothing that the
// caller can count on). That is the safe reading for the relay: it refuses
// or forgets rather than acting on state it did not see. But the node's
// view and Redis's may then differ (a Remove that failed leaves the record
// in Redis), so a node must not go on serving as if nothing happened:
// Err reports the failure until a later call succeeds, and
// StoreOptions.OnError hears of each one as it happens, so the node can
// fence itself (stop taking devices, let its lease lapse) and leave the
// repair to the reaper on another node, which finds the devices a lost node
// held with DevicesOn and removes them. The Store logs when it starts
// failing and when it recovers, not every failed call. It never panics on
// what Redis answers.
//
// A call that timed out may still run on Redis afterwards (a hung Redis
// that wakes up runs what it had received): another reason the node
// fences itself rather than guess. The relay holds its order lock across
// Store calls, so a failing call must fail fast: give the client
// ContextTimeoutEnabled, and StoreOptions.Timeout then bounds every call,
// dials and retries included; without it, the client's own DialTimeout,
// ReadTimeout, MaxRetries and DialerRetries say how long a call may take
// (with go-redis's defaults, seconds).
//
// # Redis Cluster
//
// Every key of a Store starts with "{prefix}:", so all of them share one
// hash slot: the scripts read and write keys that they find from the data
// (a device's peer, its handshakes), which Redis Cluster allows only
// within the slot of the keys a script declares. A Store is therefore one
// shard's worth of state, whatever the deployment.
package cluster

#!/usr/bin/env bash
# The relay restarts under a p2ppeer session: the devices see the pair end
# and the connection drop, reconnect with their ids when a new relay
# listens on the same port, and connect pairs again with its peer.
source "$(dirname "$0")/lib.sh"

start_relay
FIRST_RELAY=$RELAY_PID

peer B --id B --json listen
connected B
piped_peer A --id A --json connect --target B
A_PID=$LAST_PID
wait_for "A to pair" 10 has "$WORK/A.out" '"type":"paired","peer":"B"'

stop "$FIRST_RELAY"
[ "$STATUS" -eq 0 ] || fail "p2pd exited $STATUS after SIGTERM"
wait_for "A to lose the connection" 10 has "$WORK/A.out" '"type":"disconnected"'
expect_json "$WORK/A.out" 'of("disconnected")[0].code' '"SHUTTING_DOWN"'
expect_json "$WORK/A.out" 'of("unpaired").map(o => [o.peer, o.reason])' '[["B","peer_gone"]]'

# A new relay on the same port: both come back, and A pairs with B again.
RELAY_ADDR="127.0.0.1:$PORT" start_relay
wait_for "A to reconnect" 15 has "$WORK/A.out" '"type":"connected","id":"A","reconnected":true'
wait_for "B to reconnect" 15 has "$WORK/B.out" '"type":"connected","id":"B","reconnected":true'
wait_for "A to pair again" 15 json_is "$WORK/A.out" 'of("paired").length' 2
echo 'emit after-restart 1' >&7
wait_for "B to get the event" 10 has "$WORK/B.out" '"event":"after-restart"'
echo quit >&7
wait "$A_PID" || fail "connect exited $? after quit"
expect_json "$WORK/A.out" 'objs.map(o => o.type)' \
	'["connected","paired","unpaired","disconnected","connected","paired","sent","unpaired"]'
echo "reconnect ok"

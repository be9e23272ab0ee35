#!/usr/bin/env bash
# p2ppeer (protocol generation 2) paired with generation-1 JavaScript
# devices of the original client plugin (socket.io-client 2.x), in both
# directions, acknowledgements included, over websocket and polling.
source "$(dirname "$0")/lib.sh"

start_relay

# p2ppeer asks, the old device answers: J1 over websocket, J2 over polling.
gen1 J1 --id J1 listen --events hello,question --reply '{"from":"js"}'
gen1 J2 --id J2 --transport polling listen --events question
connected J1
connected J2
run_p2ppeer 0 --id A emit --target J1 hello '{"x":[1,2]}' 3 text
run_p2ppeer 0 --id A emit --target J1 question 1 --ack
[ "$OUT" = '{"from":"js"}' ] || fail "J1 answered: $OUT"
run_p2ppeer 0 --id A emit --target J2 question '"echo me"' 2 --ack
[ "$OUT" = '"echo me" 2' ] || fail "J2 answered: $OUT"
expect_json "$WORK/J1.out" 'of("event").map(o => [o.event, o.args, o.ack])' \
	'[["hello",[{"x":[1,2]},3,"text"],false],["question",[1],true]]'
# Each emit unpaired at the end: the old device heard P2P_DISCONNECT.
expect_json "$WORK/J1.out" 'objs.map(o => o.type)' '["connected","asked","paired","event","unpaired","asked","paired","event","unpaired"]'

# A scripted session with an old device.
printf '%s\n' 'ack question {"n": 1}' 'emit hello' 'unpair' |
	"$BIN/p2ppeer" --url "$URL" --id S --json connect --target J1 >"$WORK/S.out" 2>"$WORK/S.err" ||
	fail "connect to J1 exited $?"
# (The answer comes whenever J1 sends it: its place among the lines varies.)
expect_json "$WORK/S.out" 'objs.filter(o => o.type !== "ack").map(o => o.type)' '["connected","paired","sent","unpaired"]'
expect_json "$WORK/S.out" 'of("ack")[0].args' '[{"from":"js"}]'

# The old device asks, p2ppeer answers: over websocket, then polling.
peer B --id B --json listen
connected B
node "$ROOT/compat/interop/gen1-device.mjs" --url "$URL" --id J3 send B hello 1 '"two words"' >"$WORK/J3.out" 2>&1 ||
	fail "J3 send exited $?"
node "$ROOT/compat/interop/gen1-device.mjs" --url "$URL" --id J3 send B question '{"k":[true,null]}' 5 --ack >"$WORK/J3ack.out" 2>&1 ||
	fail "J3 send --ack exited $?"
expect_json "$WORK/J3ack.out" 'of("ack")[0].args' '[{"k":[true,null]},5]'
node "$ROOT/compat/interop/gen1-device.mjs" --url "$URL" --id J4 --transport polling send B question 7 --ack >"$WORK/J4.out" 2>&1 ||
	fail "J4 send --ack exited $?"
expect_json "$WORK/J4.out" 'of("ack")[0].args' '[7]'

# A p2ppeer that refuses: the old device is told no.
peer NO --id NO --json listen --accept none
connected NO
status=0
node "$ROOT/compat/interop/gen1-device.mjs" --url "$URL" --id J5 send NO hello >"$WORK/J5.out" 2>&1 || status=$?
[ "$status" -eq 3 ] || fail "J5 pairing with a refusing p2ppeer exited $status, want 3"

# What B saw: each old device paired, sent, and left (peer_gone).
wait_for "B to see J4 leave" 5 has "$WORK/B.out" '"peer":"J4","reason":"peer_gone"'
expect_json "$WORK/B.out" 'of("event").map(o => [o.event, o.args, o.from, o.reply])' \
	'[["hello",[1,"two words"],"J3",null],["question",[{"k":[true,null]},5],"J3",[{"k":[true,null]},5]],["question",[7],"J4",[7]]]'
expect_json "$WORK/B.out" 'of("unpaired").map(o => o.reason)' '["peer_gone","peer_gone","peer_gone"]'
echo "interop ok"

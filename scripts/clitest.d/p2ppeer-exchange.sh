#!/usr/bin/env bash
# p2ppeer devices exchanging events as a user's script would: a listen
# device, one-shot emits with and without acks, a scripted connect, the
# --json output parsed and checked, plain output when not on a terminal.
source "$(dirname "$0")/lib.sh"

start_relay

# B echoes acknowledgements; C answers with a fixed value.
peer B --id B --json listen
B_PID=$LAST_PID
peer C --id C --json listen --reply '{"ok":true}'
C_PID=$LAST_PID
connected B
connected C

# One-shot emits. Without --ack nothing is printed; with it, the answer.
run_p2ppeer 0 --id A emit --target B hello '{"x":1}' 2 true word
[ -z "$OUT" ] || fail "emit printed: $OUT"
run_p2ppeer 0 --id A emit --target B question '"two words"' 3 --ack
[ "$OUT" = '"two words" 3' ] || fail "emit --ack printed: $OUT"
run_p2ppeer 0 --id A emit --target C question 1 --ack
[ "$OUT" = '{"ok":true}' ] || fail "emit --ack to C printed: $OUT"
plain "$WORK/run.stdout"

# The same with --json: every line an object with a type.
run_p2ppeer 0 --id A --json emit --target B question '[1,{"y":null}]' --ack
echo "$OUT" >"$WORK/emit.json"
expect_json "$WORK/emit.json" 'objs.map(o => o.type)' '["connected","paired","ack","unpaired"]'
expect_json "$WORK/emit.json" 'of("ack")[0]' '{"type":"ack","event":"question","args":[[1,{"y":null}]]}'
expect_json "$WORK/emit.json" 'of("unpaired")[0].reason' '"unregistered"'
run_p2ppeer 0 --id A --json emit --target B note
echo "$OUT" >"$WORK/emit2.json"
expect_json "$WORK/emit2.json" 'of("sent")' '[{"type":"sent","event":"note","args":[]}]'

# A scripted connect in human mode: commands from stdin, plain output.
printf '%s\n' 'emit hello {"a": [1, 2]} "two words"' 'ack question 42' 'devices' 'quit' 'emit never' |
	"$BIN/p2ppeer" --url "$URL" --id D connect --target B >"$WORK/D.out" 2>"$WORK/D.err" ||
	fail "scripted connect exited $?"
plain "$WORK/D.out"
has "$WORK/D.out" 'paired    B' || fail "connect did not say it paired"
has "$WORK/D.out" 'sent      hello {"a":[1,2]} "two words"' || fail "connect did not say it sent"
has "$WORK/D.out" 'answer    question -> 42' || fail "connect did not print the answer"
has "$WORK/D.out" $'B\tbusy' || fail "connect did not list the devices"
has "$WORK/D.out" 'unpaired  B (you unpaired)' || fail "connect did not unpair on quit"
[ ! -s "$WORK/D.err" ] || fail "connect wrote to stderr: $(cat "$WORK/D.err")"

# Devices, as a table and as JSON.
run_p2ppeer 0 devices
[ "$OUT" = $'B\tavailable\nC\tavailable' ] || fail "devices printed: $OUT"
run_p2ppeer 0 --json devices --available
echo "$OUT" >"$WORK/devices.json"
expect_json "$WORK/devices.json" 'of("devices")[0].devices' '[{"id":"B","available":true},{"id":"C","available":true}]'

# What B saw, in order, with the answers it gave.
stop "$B_PID"
[ "$STATUS" -eq 0 ] || fail "listen exited $STATUS after SIGTERM"
stop "$C_PID"
expect_json "$WORK/B.out" 'of("event").map(o => [o.event, o.args, o.from, o.reply])' \
	'[["hello",[{"x":1},2,true,"word"],"A",null],["question",["two words",3],"A",["two words",3]],["question",[[1,{"y":null}]],"A",[[1,{"y":null}]]],["note",[],"A",null],["hello",[{"a":[1,2]},"two words"],"D",null],["question",[42],"D",[42]]]'
expect_json "$WORK/B.out" 'of("paired").map(o => o.peer)' '["A","A","A","A","D"]'
expect_json "$WORK/B.out" 'of("unpaired").map(o => o.reason)' '["ended","ended","ended","ended","ended"]'
expect_json "$WORK/C.out" 'of("event")[0].reply' '[{"ok":true}]'
echo "exchange ok"

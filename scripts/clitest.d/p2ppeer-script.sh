#!/usr/bin/env bash
# p2ppeer connect driven through stdin, as a script drives it: the prompt's
# commands one per line, --json output, acks still under way at the end
# of input answered (or timed out) before it exits, and the exit status of
# the first command that failed; its error texts; an interruption.
source "$(dirname "$0")/lib.sh"

start_relay --ack-timeout 5s

# SLOW answers acknowledgements after 700ms.
gen1 SLOW --id SLOW listen --events question,note --reply '"late answer"' --delay 700
connected SLOW
peer B --id B --json listen
B_PID=$LAST_PID
connected B

# End of input with an ack under way: connect waits for the answer.
cat >"$WORK/a.script" <<'EOF'
# comments and blank lines are skipped

emit note {"list": [1, 2], "n": 1} "two words"
ack question 1
EOF
"$BIN/p2ppeer" --url "$URL" --id A --json connect --target SLOW <"$WORK/a.script" >"$WORK/A.out" 2>"$WORK/A.err" ||
	fail "connect exited $?"
expect_json "$WORK/A.out" 'objs.map(o => o.type)' '["connected","paired","sent","ack","unpaired"]'
expect_json "$WORK/A.out" 'of("sent")[0].args' '[{"list":[1,2],"n":1},"two words"]'
expect_json "$WORK/A.out" 'of("ack")[0]' '{"type":"ack","event":"question","args":["late answer"]}'
expect_json "$WORK/SLOW.out" 'of("event").map(o => [o.event, o.args, o.ack])' \
	'[["note",[{"list":[1,2],"n":1},"two words"],false],["question",[1],true]]'

# An ack that times out (--timeout 300ms < 700ms): exit 4 once it has.
printf 'ack question 2\n' |
	"$BIN/p2ppeer" --url "$URL" --id A2 --json --timeout 300ms connect --target SLOW >"$WORK/A2.out" 2>"$WORK/A2.err" &&
	fail "connect with a timed-out ack exited 0"
status=$?
[ "$status" -eq 4 ] || fail "connect with a timed-out ack exited $status, want 4"
expect_json "$WORK/A2.out" 'of("error").map(o => o.code)' '["TIMEOUT"]'
[ "$(wc -l <"$WORK/A2.err")" -eq 1 ] || fail "stderr is not one line: $(cat "$WORK/A2.err")"

# Commands that fail do not stop the script; the first failure sets the
# exit status; nothing after quit runs; pair switches peers.
cat >"$WORK/c.script" <<'EOF'
frobnicate
emit hello 1
unpair
emit nowhere
unpair
pair nobody
pair B
ack echo {"k": "v"} 2
devices available
pair SLOW
emit note 3
quit
emit never
EOF
status=0
"$BIN/p2ppeer" --url "$URL" --id C --json connect --target B <"$WORK/c.script" >"$WORK/C.out" 2>"$WORK/C.err" || status=$?
[ "$status" -eq 2 ] || fail "scripted connect exited $status, want 2 (the unknown command came first)"
# (The ack is answered while the next commands run: its place varies.)
expect_json "$WORK/C.out" 'objs.filter(o => o.type !== "ack").map(o => o.type === "error" || o.type === "pair_failed" ? o.type + ":" + o.code : o.type)' \
	'["connected","paired","error:USAGE","sent","unpaired","error:NOT_PAIRED","error:NOT_PAIRED","pair_failed:OFFLINE","paired","devices","unpaired","paired","sent","unpaired"]'
expect_json "$WORK/C.out" 'of("ack")' '[{"type":"ack","event":"echo","args":[{"k":"v"},2]}]'
expect_json "$WORK/C.out" 'of("paired").map(o => o.peer)' '["B","B","SLOW"]'
expect_json "$WORK/C.out" 'of("devices")[0].devices' '[{"id":"SLOW","available":true}]'
[ "$(wc -l <"$WORK/C.err")" -eq 4 ] || fail "want one stderr line per failure: $(cat "$WORK/C.err")"
has "$WORK/SLOW.out" '"args":[3]' || fail "SLOW did not get note 3"
if has "$WORK/SLOW.out" 'never'; then fail "a command after quit ran"; fi

# Error texts name the command as typed, once; a line with unbalanced
# JSON is a usage error that says where, and sends nothing.
printf '%s\n' 'ack x 1' 'emit y' 'ack slow {"x": [1, 2' 'quit' |
	"$BIN/p2ppeer" --url "$URL" --id E connect >"$WORK/E.out" 2>"$WORK/E.err" && fail "a script with failures exited 0"
status=$?
[ "$status" -eq 1 ] || fail "the script exited $status, want 1 (its first failure: NOT_PAIRED)"
[ "$(sort "$WORK/E.err")" = 'p2ppeer: ack "x": NOT_PAIRED: this device has no peer
p2ppeer: column 10: unbalanced JSON: ]} missing at the end
p2ppeer: emit "y": NOT_PAIRED: this device has no peer' ] || fail "error texts: $(cat "$WORK/E.err")"

# A script interrupted: it leaves as after quit, and exits 130.
piped_peer F --id F --json connect --target B
F_PID=$LAST_PID
wait_for "F to pair" 10 has "$WORK/F.out" '"type":"paired","peer":"B"'
stop "$F_PID" INT
[ "$STATUS" -eq 130 ] || fail "an interrupted script exited $STATUS, want 130"
[ ! -s "$WORK/F.err" ] || fail "an interrupted script wrote: $(cat "$WORK/F.err")"
expect_json "$WORK/F.out" 'objs.map(o => o.type)' '["connected","paired","unpaired"]'

# B saw hello from C, then the ack it echoed.
stop "$B_PID"
expect_json "$WORK/B.out" 'of("event").map(o => [o.event, o.from, o.reply])' '[["hello","C",null],["echo","C",[{"k":"v"},2]]]'
echo "script mode ok"

#!/usr/bin/env bash
# p2ppeer's exit codes, as a script sees them: 0 success, 2 usage, 3
# pairing failed (offline, busy, refused, self), 4 timed out, 5 could not
# connect, 6 closed by the relay (kicked, id taken over), 130 and 143
# interrupted (SIGINT, SIGTERM), 1 anything else; each failure with a
# one-line reason on stderr, an interruption with none.
source "$(dirname "$0")/lib.sh"

ADMIN_TOKEN="p2pa_clitest-$$-$RANDOM$RANDOM"
start_relay --pair-timeout 1s --ack-timeout 1s --admin-token "$ADMIN_TOKEN"

# one_line: stderr is exactly one line, with the given text.
one_line() {
	[ "$(printf '%s\n' "$ERR" | wc -l)" -eq 1 ] || fail "stderr is not one line: $ERR"
	case "$ERR" in *"$1"*) ;; *) fail "stderr lacks \"$1\": $ERR" ;; esac
}

# 2: usage.
run_p2ppeer 2 emit --target B x
one_line "--id"
run_p2ppeer 2 --id A listen --accept 'a,,b'
one_line "--accept"
run_p2ppeer 2 --id A frobnicate
run_p2ppeer 2 --id A emit --target B
run_p2ppeer 2 --id A --timeout 0s devices
# An argument that starts like JSON must be JSON: where it goes wrong.
run_p2ppeer 2 --id A emit --target B slow '{"x": [1, 2'
one_line 'argument "{\"x\": [1, 2": unbalanced JSON: ]} missing at the end'
run_p2ppeer 2 --id A emit --target B x '{x: 1}'
one_line "character 2: invalid JSON"
run_p2ppeer 2 --id A listen --reply '[1,'
one_line "--reply"

# 3: pairing failed.
peer NO --id NO --json listen --accept none
peer LIST --id LIST --json listen --accept A,E
peer B --id B --json listen
connected NO
connected LIST
connected B
run_p2ppeer 3 --id A emit --target nobody x
one_line "OFFLINE"
run_p2ppeer 3 --id A emit --target A x
one_line "SELF"
run_p2ppeer 3 --id C emit --target NO x
one_line "REFUSED"
run_p2ppeer 3 --id C emit --target LIST x
one_line "REFUSED"
run_p2ppeer 0 --id E emit --target LIST x
wait_for "NO to say it refused" 5 has "$WORK/NO.out" '{"type":"pair_refused","peer":"C"}'

# BUSY: H holds a pair with B while it reads commands from a pipe.
piped_peer H --id H --json connect --target B
H_PID=$LAST_PID
wait_for "H to pair" 10 has "$WORK/H.out" '"type":"paired"'
run_p2ppeer 3 --id C emit --target B x
one_line "BUSY"
run_p2ppeer 3 --id C --json emit --target H x
echo "$OUT" >"$WORK/busy.json"
expect_json "$WORK/busy.json" 'of("pair_failed").map(o => [o.peer, o.code])' '[["H","BUSY"]]'
echo quit >&7
wait "$H_PID" || fail "connect H exited $? after quit"

# --wait: the emit waits for its target to come online and be free.
"$BIN/p2ppeer" --url "$URL" --id W emit --wait --target LATE hello >"$WORK/W.out" 2>"$WORK/W.err" &
W_PID=$!
PIDS+=("$W_PID")
wait_for "W to find LATE offline" 5 grep -q 'msg="request refused" id=W code=OFFLINE' "$WORK/p2pd-0.log"
peer LATE --id LATE --json listen
wait "$W_PID" || fail "emit --wait exited $?"
wait_for "LATE to get hello" 5 has "$WORK/LATE.out" '"event":"hello"'

# 4: timed out. MUTE never answers pairing requests (the relay gives up
# after 1s); SILENT pairs but never answers the acknowledgement.
gen1 MUTE --id MUTE listen --mute
gen1 SILENT --id SILENT listen
connected MUTE
connected SILENT
run_p2ppeer 4 --id A emit --target MUTE x
one_line "TIMEOUT"
run_p2ppeer 4 --id A emit --target SILENT question --ack
one_line "TIMEOUT"
run_p2ppeer 0 --id A emit --target SILENT note

# 5: could not connect, or not let in.
run_p2ppeer 5 --id B devices
one_line "ID_IN_USE"
URL_SAVED=$URL
URL="http://127.0.0.1:1"
run_p2ppeer 5 --id A --timeout 1s devices
one_line "could not connect"
URL=$URL_SAVED

# 6: the relay closed the device for good: an operator kicked it, or a
# connection with its token took its id. It says so, once.
peer K --id K --json listen
K_PID=$LAST_PID
connected K
"$BIN/p2pctl" --url "$URL" --token "$ADMIN_TOKEN" kick K >/dev/null || fail "p2pctl kick failed"
STATUS=0
wait "$K_PID" || STATUS=$?
[ "$STATUS" -eq 6 ] || fail "a kicked listen exited $STATUS, want 6"
[ "$(wc -l <"$WORK/K.err")" -eq 1 ] || fail "kicked: stderr is not one line: $(cat "$WORK/K.err")"
has "$WORK/K.err" "kicked by an operator (KICKED: disconnected by an operator)" || fail "kicked: $(cat "$WORK/K.err")"
expect_json "$WORK/K.out" 'objs.map(o => o.type + (o.code ? ":" + o.code : ""))' '["connected","error:KICKED"]'
piped_peer K2 --id K2 connect
K2_PID=$LAST_PID
wait_for "K2 to connect" 10 has "$WORK/K2.out" "connected K2"
"$BIN/p2pctl" --url "$URL" --token "$ADMIN_TOKEN" kick K2 >/dev/null || fail "p2pctl kick failed"
STATUS=0
wait "$K2_PID" || STATUS=$?
[ "$STATUS" -eq 6 ] || fail "a kicked connect exited $STATUS, want 6"
if has "$WORK/K2.out" "reconnecting"; then fail "a kicked device said it was reconnecting: $(cat "$WORK/K2.out")"; fi

# 130, 143: interrupted while waiting for a target, without a word.
for sig in INT TERM; do
	: >"$WORK/wait.err"
	"$BIN/p2ppeer" --url "$URL" --id "W$sig" emit --wait --target NOBODY x >"$WORK/wait.out" 2>"$WORK/wait.err" &
	W_PID=$!
	PIDS+=("$W_PID")
	wait_for "W$sig to wait" 5 grep -q "msg=\"request refused\" id=W$sig code=OFFLINE" "$WORK/p2pd-0.log"
	stop "$W_PID" "$sig"
	want=130
	[ "$sig" = TERM ] && want=143
	[ "$STATUS" -eq "$want" ] || fail "emit --wait after SIG$sig exited $STATUS, want $want"
	[ ! -s "$WORK/wait.err" ] || fail "emit --wait after SIG$sig wrote: $(cat "$WORK/wait.err")"
done
# listen's way to stop is a signal: exit 0.
peer L --id L listen
L_PID=$LAST_PID
wait_for "L to connect" 10 has "$WORK/L.out" "connected L"
stop "$L_PID" INT
[ "$STATUS" -eq 0 ] || fail "listen after SIGINT exited $STATUS, want 0"

# 1: anything else, e.g. an event name the relay does not relay.
run_p2ppeer 1 --id A emit --target B P2P_REGISTER
one_line 'emit "P2P_REGISTER": RESERVED_EVENT'
echo "exit codes ok"

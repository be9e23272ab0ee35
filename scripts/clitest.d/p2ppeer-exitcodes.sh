#!/usr/bin/env bash
# p2ppeer's exit codes, as a script sees them: 0 success, 2 usage, 3
# pairing failed (offline, busy, refused, self), 4 timed out, 5 could not
# connect, 1 anything else; each failure with a one-line reason on stderr.
source "$(dirname "$0")/lib.sh"

start_relay --pair-timeout 1s --ack-timeout 1s

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

# 1: anything else, e.g. an event name the relay does not relay.
run_p2ppeer 1 --id A emit --target B P2P_REGISTER
one_line "RESERVED_EVENT"
echo "exit codes ok"

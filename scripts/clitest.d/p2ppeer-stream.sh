#!/usr/bin/env bash
# p2ppeer stream copies a file across the relay: a 20 MiB file piped into
# one device comes out of the other byte for byte, with its throughput on
# stderr; both ways at once; a device that takes no streams refuses.
source "$(dirname "$0")/lib.sh"

start_relay

head -c $((20 << 20)) /dev/urandom >"$WORK/in.bin"

# B waits for a stream and writes it to a file; A sends the file.
"$BIN/p2ppeer" --url "$URL" --id B stream >"$WORK/B.bin" </dev/null 2>"$WORK/B.err" &
B_PID=$!
PIDS+=("$B_PID")
run_p2ppeer_in() { # run_p2ppeer_in FILE WANT_STATUS ARGS...: run_p2ppeer with stdin from FILE
	local in=$1 want=$2
	shift 2
	local status=0
	"$BIN/p2ppeer" --url "$URL" "$@" <"$in" >"$WORK/run.stdout" 2>"$WORK/run.stderr" || status=$?
	ERR=$(cat "$WORK/run.stderr")
	[ "$status" -eq "$want" ] || fail "p2ppeer $* exited $status, want $want; stderr: $ERR"
}
run_p2ppeer_in "$WORK/in.bin" 0 --id A stream --wait --target B
[ ! -s "$WORK/run.stdout" ] || fail "A wrote $(wc -c <"$WORK/run.stdout") bytes to stdout; B sent nothing"
STATUS=0
wait "$B_PID" || STATUS=$?
[ "$STATUS" -eq 0 ] || fail "B exited $STATUS: $(cat "$WORK/B.err")"
cmp "$WORK/in.bin" "$WORK/B.bin" || fail "the file came out different"
# Each says how much went which way, and how fast.
grep -Eq '^done +sent 20\.0 MiB in [0-9.]+s \([0-9.]+ MiB/s\), received 0\.0 MiB' "$WORK/run.stderr" || fail "A's summary: $ERR"
grep -Eq '^done +sent 0\.0 MiB .*, received 20\.0 MiB in [0-9.]+s \([0-9.]+ MiB/s\)$' "$WORK/B.err" || fail "B's summary: $(cat "$WORK/B.err")"
echo "20 MiB: $(sed -n 's/.*sent 20.0 MiB in \([0-9.]*s\) (\([0-9.]*\) MiB\/s).*/\1, \2 MiB\/s/p' "$WORK/run.stderr")"

# Both ways at once, --json on stderr, with one chunk in flight.
head -c $((3 << 20)) /dev/urandom >"$WORK/a.bin"
head -c $((5 << 20)) /dev/urandom >"$WORK/b.bin"
"$BIN/p2ppeer" --url "$URL" --id D --json stream --window 1 <"$WORK/b.bin" >"$WORK/D.bin" 2>"$WORK/D.err" &
D_PID=$!
PIDS+=("$D_PID")
"$BIN/p2ppeer" --url "$URL" --id C --json stream --window 1 --wait --target D <"$WORK/a.bin" >"$WORK/C.bin" 2>"$WORK/C.err" ||
	fail "C exited $?: $(cat "$WORK/C.err")"
wait "$D_PID" || fail "D exited $?: $(cat "$WORK/D.err")"
cmp "$WORK/a.bin" "$WORK/D.bin" || fail "C to D came out different"
cmp "$WORK/b.bin" "$WORK/C.bin" || fail "D to C came out different"
# (Each leaves once done: the other may hear the pair end before or
# after its summary.)
expect_json "$WORK/C.err" 'objs.filter(o => o.type !== "unpaired").map(o => o.type)' '["connected","paired","stream","stream_end"]'
expect_json "$WORK/D.err" 'objs.filter(o => o.type !== "unpaired").map(o => o.type)' '["connected","paired","stream","stream_end"]'
expect_json "$WORK/C.err" '[of("stream_end")[0].sent, of("stream_end")[0].received]' "[$((3 << 20)),$((5 << 20))]"

# A device that takes no streams (listen) refuses: exit 1, saying so.
peer L --id L --json listen
connected L
run_p2ppeer_in /dev/null 1 --id E stream --target L
case "$ERR" in *"REFUSED"*) ;; *) fail "a refused stream said: $ERR" ;; esac
# Usage errors.
run_p2ppeer_in /dev/null 2 --id E stream --target L --window 0
echo "stream ok"

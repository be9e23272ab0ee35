#!/usr/bin/env bash
# Devices come back by themselves: a device whose network drops gets its
# pair back within the relay's resume window, with what its peer sent
# meanwhile, and its peer notices nothing; past the window the connect
# device pairs again by itself. A relay that refuses connections is
# reported at once, with why; one that never answers within --timeout.
# And a script that runs the same device 50 times in a row is always let
# in.
source "$(dirname "$0")/lib.sh"

start_relay --resume-window 1m
RELAY_LOG="$WORK/p2pd-0.log"

# A listens behind a network that fails; B is paired with it.
start_proxy "$PORT"
PROXY=$PROXY_PID
URL_RELAY=$URL
URL=$PROXY_URL peer A --id A --json listen
connected A
piped_peer B --id B --json connect --target A
B_PID=$LAST_PID
wait_for "B to pair" 10 has "$WORK/B.out" '"type":"paired","peer":"A"'

# The network drops. While A is away, B sends; the relay holds it.
kill -USR1 "$PROXY"
wait_for "A to notice" 10 has "$WORK/A.out" '"type":"disconnected"'
wait_for "the relay to keep A away" 10 grep -q 'msg="device away" id=A' "$RELAY_LOG"
printf '%s\n' 'emit held 1' 'emit held 2' >&7
wait_for "B to send" 10 json_is "$WORK/B.out" 'of("sent").length' 2
kill -USR2 "$PROXY"
wait_for "A to resume" 15 has "$WORK/A.out" '"type":"resumed","peer":"B"'
echo 'emit after 3' >&7
wait_for "A to get what B sent after" 10 has "$WORK/A.out" '"event":"after"'
expect_json "$WORK/A.out" 'objs.map(o => o.type === "event" ? o.event + o.args : o.type)' \
	'["connected","paired","disconnected","connected","held1","held2","resumed","after3"]'
expect_json "$WORK/B.out" 'objs.map(o => o.type)' '["connected","paired","sent","sent","sent"]'
echo quit >&7
wait "$B_PID" || fail "B exited $? after quit"
stop "$PROXY"

# Past the window: A (connect) comes back unpaired and pairs again.
start_relay --resume-window 200ms
RELAY_LOG="$WORK/p2pd-$((${#PIDS[@]} - 1)).log"
start_proxy "$PORT"
PROXY=$PROXY_PID
peer B2 --id B --json listen
connected B2
URL=$PROXY_URL piped_peer A2 --id A --json connect --target B
A_PID=$LAST_PID
wait_for "A to pair" 10 has "$WORK/A2.out" '"type":"paired","peer":"B"'
kill -USR1 "$PROXY"
wait_for "B to see A gone" 10 has "$WORK/B2.out" '"type":"unpaired","peer":"A","reason":"peer_gone"'
kill -USR2 "$PROXY"
wait_for "A to pair again" 15 json_is "$WORK/A2.out" 'of("paired").length' 2
expect_json "$WORK/A2.out" 'objs.map(o => o.type === "unpaired" ? o.type + ":" + o.reason : o.type)' \
	'["connected","paired","disconnected","connected","unpaired:connection_lost","paired"]'
echo 'emit again' >&7
wait_for "B to get it" 10 has "$WORK/B2.out" '"event":"again"'
echo quit >&7
wait "$A_PID" || fail "A exited $? after quit"

# The same device, 50 times in a row: never ID_IN_USE.
for i in $(seq 50); do
	run_p2ppeer 0 --id A emit --target B loop "$i"
done
wait_for "B to get all 50" 10 json_is "$WORK/B2.out" 'of("event").filter(o => o.event === "loop").length' 50

# Nothing listens: exit 5 at once, saying why.
URL="http://127.0.0.1:$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')"
start=$SECONDS
run_p2ppeer 5 --id A --timeout 30s devices
[ $((SECONDS - start)) -le 2 ] || fail "a refused connection took $((SECONDS - start)) s to report"
case "$ERR" in *"connection refused"*) ;; *) fail "the error does not say why: $ERR" ;; esac

# Something accepts connections and never answers: exit 5 once --timeout
# has passed, not later.
SILENT_OUT="$WORK/silent.port"
node -e 'const s = require("net").createServer(() => {}).listen(0, "127.0.0.1", () => console.log(s.address().port))' >"$SILENT_OUT" &
PIDS+=($!)
wait_for "the silent server" 10 grep -q . "$SILENT_OUT"
URL="http://127.0.0.1:$(head -n 1 "$SILENT_OUT")"
start=$SECONDS
run_p2ppeer 5 --id A --timeout 1s devices
[ $((SECONDS - start)) -le 3 ] || fail "--timeout 1s took $((SECONDS - start)) s against a silent server"
case "$ERR" in *"no answer"*) ;; *) fail "the error does not say why: $ERR" ;; esac
URL=$URL_RELAY
echo "come back ok"

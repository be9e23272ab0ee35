#!/usr/bin/env bash
# p2pd as an operator runs it: bad flags exit 2 with one line, /healthz
# answers once it serves, the admin and metrics endpoints want the token,
# p2pd token mints what the relay accepts, and SIGTERM stops it with exit 0
# in well under the shutdown wait.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# Bad command lines: exit 2, one line on stderr, nothing served.
for args in "--bogus" "--max-payload=0" "--tls-cert=$WORK/none.pem" "--duplicate-id=steal" "--device-secret=short" "--ping-interval=0s" "--idle-trim=1ns" "--idle-trim=-1s"; do
	set +e
	# shellcheck disable=SC2086
	"$BIN/p2pd" --listen 127.0.0.1:0 $args >"$WORK/bad.out" 2>"$WORK/bad.err"
	status=$?
	set -e
	[ "$status" -eq 2 ] || fail "p2pd $args exited $status, want 2"
	[ "$(wc -l <"$WORK/bad.err")" -eq 1 ] || fail "p2pd $args printed more than one line: $(cat "$WORK/bad.err")"
done
"$BIN/p2pd" --version | grep -q . || fail "p2pd --version printed nothing"

SECRET=0123456789abcdef-lifecycle
start_relay --admin-token lifecycle-admin-token --device-secret "$SECRET"
curl -fsS "$URL/healthz" | grep -qx ok || fail "/healthz did not answer ok"
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/admin/v1/state")
[ "$code" = 401 ] || fail "/admin/v1/state without a token answered $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $SECRET" "$URL/admin/v1/state")
[ "$code" = 401 ] || fail "/admin/v1/state took the device secret: $code"
curl -fsS -H 'Authorization: Bearer lifecycle-admin-token' "$URL/metrics" | grep -q '^p2p' || fail "/metrics has no p2p metrics"

# Tokens: a device without one is refused, one with a minted token pairs.
TOKEN_B=$(P2PD_DEVICE_SECRET=$SECRET "$BIN/p2pd" token --id B --ttl 1h)
TOKEN_A=$("$BIN/p2pd" token --id A --device-secret "$SECRET")
set +e
"$BIN/p2ppeer" --url "$URL" --id A --timeout 3s devices >"$WORK/noauth.out" 2>"$WORK/noauth.err"
status=$?
set -e
[ "$status" -eq 5 ] || fail "a device without a token got exit $status, want 5"
grep -q UNAUTHORIZED "$WORK/noauth.err" || fail "no UNAUTHORIZED in: $(cat "$WORK/noauth.err")"
"$BIN/p2ppeer" --url "$URL" --id B --token "$TOKEN_B" listen >"$WORK/b.out" 2>"$WORK/b.err" &
PIDS+=($!)
wait_for "B to connect" 10 grep -q "connected" "$WORK/b.out"
"$BIN/p2ppeer" --url "$URL" --id A --token "$TOKEN_A" --timeout 5s emit --target B hi --ack >"$WORK/a.out" 2>"$WORK/a.err" ||
	fail "A with its token could not pair and send"

# SIGTERM: exit 0, quickly.
kill "${PIDS[-1]}"
start=$SECONDS
kill -TERM "$RELAY_PID"
set +e
wait "$RELAY_PID"
status=$?
set -e
[ "$status" -eq 0 ] || fail "p2pd exited $status after SIGTERM"
[ $((SECONDS - start)) -le 3 ] || fail "p2pd took $((SECONDS - start)) s to stop"
echo "p2pd lifecycle ok"

#!/usr/bin/env bash
# p2pd's help and its admin token as an operator meets them: p2pd --help
# shows the serving flags and the exit codes; a generated admin token is
# kept in a file only its user reads, used again at the next start and
# found by p2pctl on the same machine; a port in use fails before any token
# is made or told.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# Help: the default command's flags, their environment variables, the exit
# codes; a wrong flag is a usage error that points there.
"$BIN/p2pd" --help >"$WORK/help.out" || fail "p2pd --help exited $?"
for want in "--listen" "P2PD_LISTEN" "--admin-token-file" "--state-dir" "P2PD_STATE_DIR" "Exit status: 0" "token --id"; do
	grep -qF -- "$want" "$WORK/help.out" || fail "p2pd --help lacks $want"
done
"$BIN/p2pd" token --help | grep -qF P2PD_DEVICE_SECRET || fail "p2pd token --help does not name P2PD_DEVICE_SECRET"
for cmd in "" devices device watch kick unpair pairs nodes; do
	# shellcheck disable=SC2086
	"$BIN/p2pctl" $cmd --help >"$WORK/ctlhelp.out" 2>&1 || true
	for env in P2PCTL_URL P2PCTL_TOKEN P2PCTL_TOKEN_FILE; do
		grep -qF "$env" "$WORK/ctlhelp.out" || fail "p2pctl $cmd --help does not name $env"
	done
done
set +e
"$BIN/p2pd" --port 9000 >/dev/null 2>"$WORK/bad.err"; code=$?
env -u P2PD_DEVICE_SECRET "$BIN/p2pd" token --id A >/dev/null 2>"$WORK/token.err"; tcode=$?
set -e
[ "$code" -eq 2 ] && grep -q "unknown flag --port.*p2pd --help" "$WORK/bad.err" || fail "p2pd --port: exit $code, $(cat "$WORK/bad.err")"
[ "$tcode" -eq 2 ] && grep -q P2PD_DEVICE_SECRET "$WORK/token.err" || fail "p2pd token without a secret: exit $tcode, $(cat "$WORK/token.err")"

# The first start generates a token and keeps it; it is not logged.
TOKEN_FILE="$XDG_STATE_HOME/p2pd/admin-token"
start_relay
first_log="$WORK/p2pd-$((${#PIDS[@]} - 1)).log"
[ -s "$TOKEN_FILE" ] || fail "no token file at $TOKEN_FILE"
[ "$(stat -c %a "$TOKEN_FILE")" = 600 ] || fail "token file mode $(stat -c %a "$TOKEN_FILE")"
[ "$(stat -c %a "$(dirname "$TOKEN_FILE")")" = 700 ] || fail "state folder mode $(stat -c %a "$(dirname "$TOKEN_FILE")")"
TOKEN=$(cat "$TOKEN_FILE")
grep -q "generated an admin token and kept it" "$first_log" || fail "the first start does not say it kept a token"
if grep -qF "$TOKEN" "$first_log"; then fail "the kept token is in the log"; fi
# p2pctl finds it with no --token.
"$BIN/p2pctl" --url "$URL" devices --json >"$WORK/devices.json" || fail "p2pctl without --token: exit $?"
[ "$(tr -d ' \n' <"$WORK/devices.json")" = "[]" ] || fail "devices: $(cat "$WORK/devices.json")"
# ... but never sends it to a relay elsewhere.
set +e
"$BIN/p2pctl" --url http://192.0.2.1:9 devices >/dev/null 2>"$WORK/remote.err"; code=$?
set -e
[ "$code" -eq 3 ] && grep -q "not on this machine" "$WORK/remote.err" || fail "p2pctl to another machine: exit $code, $(cat "$WORK/remote.err")"
stop "$RELAY_PID"
[ "$STATUS" -eq 0 ] || fail "p2pd exited $STATUS"

# The next start uses it again.
start_relay
grep -q "admin token read from its file" "$WORK/p2pd-$((${#PIDS[@]} - 1)).log" || fail "the second start did not read the token file"
[ "$(cat "$TOKEN_FILE")" = "$TOKEN" ] || fail "the token changed"
curl -fsS -H "Authorization: Bearer $TOKEN" "$URL/admin/v1/state" >/dev/null || fail "the kept token is refused after a restart"
P2PCTL_URL="$URL" "$BIN/p2pctl" pairs >/dev/null || fail "p2pctl after a restart"

# A port in use fails first: no token made, told or kept.
BUSY_STATE="$WORK/busy-state"
set +e
"$BIN/p2pd" --listen "127.0.0.1:$PORT" --state-dir "$BUSY_STATE" >/dev/null 2>"$WORK/busy.err"; code=$?
set -e
[ "$code" -eq 1 ] || fail "p2pd on a port in use exited $code, want 1"
grep -q "listen on 127.0.0.1:$PORT" "$WORK/busy.err" || fail "no bind error: $(cat "$WORK/busy.err")"
if grep -qi "token" "$WORK/busy.err"; then fail "a token was made or told before the bind: $(cat "$WORK/busy.err")"; fi
[ ! -e "$BUSY_STATE" ] || fail "the state folder was made before the bind"

# A token file others may read is refused.
chmod 644 "$TOKEN_FILE"
stop "$RELAY_PID"
set +e
"$BIN/p2pd" --listen 127.0.0.1:0 >/dev/null 2>"$WORK/open.err"; code=$?
set -e
[ "$code" -eq 1 ] && grep -q "chmod 600" "$WORK/open.err" || fail "a token file others may read: exit $code, $(cat "$WORK/open.err")"
echo "p2pd admin token: ok"

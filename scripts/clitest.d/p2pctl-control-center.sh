#!/usr/bin/env bash
# p2pctl against a live relay, as an operator and a script would use it:
# the script subcommands with their JSON and exit codes, then the real
# dashboard in tmux, read off the screen. Devices are real socket.io-client
# 4.x devices driven by node.
source "$(dirname "$0")/lib.sh"
TOKEN="p2pa_clitest-$$-$RANDOM$RANDOM"
TMUX_SOCKET="p2pctl-clitest-$$"
trap 'tmux -L "$TMUX_SOCKET" kill-server 2>/dev/null || true; cleanup' EXIT

need_compat_modules

start_relay --admin-token "$TOKEN"

# Four devices: alpha asks bravo to pair and sends it a message every
# 100ms; charlie and delta stay available.
cat >"$WORK/devices.cjs" <<'EOF'
const { io } = require('sio4');
const [url, ...ids] = process.argv.slice(2);
const socks = {};
let up = 0;
for (const id of ids) {
  const s = io(url, { query: { clientId: id }, transports: ['websocket'], forceNew: true, reconnection: false });
  s.on('P2P_REGISTER', (src, ack) => ack(true));
  s.on('connect_error', (e) => { console.error(id, 'connect_error', e.message); process.exit(1); });
  s.on('connect', () => { if (++up === ids.length) pair(); });
  socks[id] = s;
}
function pair() {
  socks.alpha.emit('P2P_REGISTER', 'bravo', (ok) => {
    if (ok !== true) { console.error('pairing refused'); process.exit(1); }
    console.log('paired');
    setInterval(() => socks.alpha.emit('P2P_EMIT', { targetClientId: 'bravo', event: 'tick', args: [Date.now()] }), 100);
  });
}
process.on('SIGTERM', () => process.exit(0));
EOF
: >"$WORK/devices.log"
NODE_PATH="$ROOT/compat/node_modules" node "$WORK/devices.cjs" "$URL" alpha bravo charlie delta >"$WORK/devices.log" 2>&1 &
PIDS+=($!)
wait_for "the devices to pair" 10 grep -q paired "$WORK/devices.log"

export P2PCTL_URL="$URL" P2PCTL_TOKEN="$TOKEN"

# holds FILE EXPR: the JavaScript expression EXPR is true of the JSON document
# in FILE (as v).
holds() {
	node -e 'const v = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); const r = eval(process.argv[2]); if (!r) { console.error("false:", process.argv[2], JSON.stringify(v)); process.exit(1); }' "$1" "$2"
}

# Script subcommands.
"$BIN/p2pctl" devices --json >"$WORK/devices.json" || fail "devices --json"
holds "$WORK/devices.json" 'v.length === 4 && v.map(d => d.id).join() === "alpha,bravo,charlie,delta"' || fail "devices --json ids"
holds "$WORK/devices.json" 'v[0].peer === "bravo" && v[0].available === false && v[2].available === true && v[2].peer === "" && v.every(d => d.transport && d.address && d.connected_at)' || fail "devices --json fields"
"$BIN/p2pctl" devices --available --json >"$WORK/available.json" || fail "devices --available --json"
holds "$WORK/available.json" 'v.map(d => d.id).join() === "charlie,delta"' || fail "available devices"
"$BIN/p2pctl" pairs --json >"$WORK/pairs.json" || fail "pairs --json"
holds "$WORK/pairs.json" 'v.length === 1 && v[0].a === "alpha" && v[0].b === "bravo" && v[0].since && typeof v[0].messages === "number"' || fail "pairs --json"
"$BIN/p2pctl" devices >"$WORK/devices.txt" || fail "devices"
grep -q '^alpha .* bravo ' "$WORK/devices.txt" || fail "devices table: $(cat "$WORK/devices.txt")"
"$BIN/p2pctl" pairs >"$WORK/pairs.txt" || fail "pairs"
grep -q '^alpha .*bravo' "$WORK/pairs.txt" || fail "pairs table: $(cat "$WORK/pairs.txt")"

# One device: its detail once, then its traffic as it happens.
"$BIN/p2pctl" device alpha --json >"$WORK/alpha.json" || fail "device alpha --json"
holds "$WORK/alpha.json" 'v.id === "alpha" && v.peer === "bravo" && v.messages_in > 0 && v.bytes_in > 0 && v.refusals_by_code && v.watched === false' || fail "device alpha --json fields"
"$BIN/p2pctl" device alpha >"$WORK/alpha.txt" || fail "device alpha"
grep -q '^STATE  *↔ bravo$' "$WORK/alpha.txt" && grep -q '^SENT  *[1-9][0-9]* messages' "$WORK/alpha.txt" || fail "device alpha: $(cat "$WORK/alpha.txt")"
"$BIN/p2pctl" watch --device alpha --json --count 3 >"$WORK/tail.out" || fail "watch --device alpha"
[ "$(grep -c '"kind":"traffic","time":"[^"]*","id":"alpha","dir":"in","event":"tick","size":[0-9]' "$WORK/tail.out")" -eq 3 ] || fail "watch --device alpha: $(cat "$WORK/tail.out")"
set +e
"$BIN/p2pctl" device nobody >/dev/null 2>"$WORK/err"; code=$?
set -e
[ "$code" -eq 1 ] && grep -q '^p2pctl: OFFLINE' "$WORK/err" || fail "device nobody: exit $code, $(cat "$WORK/err")"

# watch prints the kick as it happens, then exits after --count events.
"$BIN/p2pctl" watch --json --count 2 >"$WORK/watch.out" 2>"$WORK/watch.log" &
WATCH=$!
PIDS+=($WATCH)
subscribed() {
	node -e 'fetch(process.argv[1], {headers: {Authorization: "Bearer " + process.argv[2]}}).then(r => r.text()).then(t => process.exit(/^p2pd_admin_subscribers 1$/m.test(t) ? 0 : 1), () => process.exit(1))' "$URL/metrics" "$TOKEN"
}
wait_for "watch to subscribe" 10 subscribed
[ "$("$BIN/p2pctl" kick delta)" = "kicked delta" ] || fail "kick delta"
wait_for "watch to exit" 10 sh -c "! kill -0 $WATCH 2>/dev/null"
wait "$WATCH" || fail "watch exited non-zero"
grep -q '"kind":"device_disconnected".*"id":"delta".*"reason":"kicked"' "$WORK/watch.out" || fail "watch did not print the kick: $(cat "$WORK/watch.out")"
grep -q '"kind":"command".*"id":"delta"' "$WORK/watch.out" || fail "watch did not print the command: $(cat "$WORK/watch.out")"
[ "$(wc -l <"$WORK/watch.out")" -eq 2 ] || fail "watch --count 2 printed $(wc -l <"$WORK/watch.out") lines"

# Refusals: a non-zero exit and one line on stderr.
set +e
"$BIN/p2pctl" kick delta >/dev/null 2>"$WORK/err"; code=$?
set -e
[ "$code" -eq 1 ] && grep -q '^p2pctl: OFFLINE' "$WORK/err" && [ "$(wc -l <"$WORK/err")" -eq 1 ] || fail "kick of a gone device: exit $code, $(cat "$WORK/err")"
for cmd in devices pairs watch "kick alpha" "unpair alpha" "device alpha" "watch --device alpha"; do
	set +e
	# shellcheck disable=SC2086
	P2PCTL_TOKEN=p2pa_wrong-token-000000 "$BIN/p2pctl" $cmd >/dev/null 2>"$WORK/err"; code=$?
	set -e
	[ "$code" -eq 3 ] && grep -q '^p2pctl: .*UNAUTHORIZED' "$WORK/err" && [ "$(wc -l <"$WORK/err")" -eq 1 ] || fail "$cmd with a wrong token: exit $code, $(cat "$WORK/err")"
	set +e
	# shellcheck disable=SC2086
	P2PCTL_URL=http://127.0.0.1:1 "$BIN/p2pctl" $cmd >/dev/null 2>"$WORK/err"; code=$?
	set -e
	[ "$code" -eq 4 ] && grep -q '^p2pctl: relay unreachable' "$WORK/err" && [ "$(wc -l <"$WORK/err")" -eq 1 ] || fail "$cmd against no relay: exit $code, $(cat "$WORK/err")"
done

# The dashboard, in a real terminal.
tmux -L "$TMUX_SOCKET" new-session -d -s dash -x 120 -y 32 \
	"P2PCTL_URL='$URL' P2PCTL_TOKEN='$TOKEN' '$BIN/p2pctl'; echo \$? >'$WORK/dash.exit'"
screen() { tmux -L "$TMUX_SOCKET" capture-pane -p -t dash 2>/dev/null; }
shows() { screen >"$WORK/screen.txt" && grep -q -- "$1" "$WORK/screen.txt"; }
wait_for "the dashboard to go live" 10 shows "● live"
wait_for "the pair on screen" 10 shows "alpha ↔ bravo"
for text in "All devices 3" "Available 1" "Pairs 1" "↔ bravo" "charlie" "synced: 3 devices, 1 pair"; do
	shows "$text" || { screen >&2; fail "dashboard does not show '$text'"; }
done
keys() { tmux -L "$TMUX_SOCKET" send-keys -t dash "$@"; }
# enter: alpha's detail, and its messages to bravo as they go.
keys Enter
wait_for "alpha's detail" 10 shows "Traffic (following)"
wait_for "alpha's traffic" 10 shows "in  tick"
wait_for "alpha's counters" 10 shows "sent        [1-9][0-9]* messages ([0-9.]*/s)"
shows "↔ bravo" || { screen >&2; fail "the detail does not show alpha's peer"; }
keys Escape
wait_for "the panes again" 10 shows "All devices 3 · by id"
keys s
wait_for "the devices by uptime" 10 shows "by uptime"
keys '?'
wait_for "the help" 10 shows "pgup/ctrl+b"
keys x
wait_for "the panes after the help" 10 shows "All devices 3"
keys q
wait_for "the dashboard to quit" 10 test -s "$WORK/dash.exit"
[ "$(cat "$WORK/dash.exit")" = 0 ] || fail "dashboard exited with $(cat "$WORK/dash.exit")"
echo "p2pctl control center: ok"

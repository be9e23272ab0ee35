#!/usr/bin/env bash
# A routine restart of p2pd (SIGTERM, then start again on the same port)
# with the original JavaScript devices connected: generation 1 on
# socket.io-client 2.x, generation 2 on 2.x and 4.x, over websocket and
# polling, each with its client's own reconnection. All come back by
# themselves within 10 s of the new relay listening, without being touched.
source "$(dirname "$0")/lib.sh"

start_relay
FIRST=$RELAY_PID
need_compat_modules
DEVICES=(G1WS:1:2:websocket G1POLL:1:2:polling G2V2:2:2:websocket G2V2POLL:2:2:polling G2V4:2:4:websocket G2V4POLL:2:4:polling)
: >"$WORK/devs.out"
node "$ROOT/compat/interop/reconnecting-devices.mjs" --url "$URL" "${DEVICES[@]}" >"$WORK/devs.out" 2>"$WORK/devs.err" &
PIDS+=($!)
count() { grep -c "\"type\":\"$1\"" "$WORK/devs.out" || true; }
all() { [ "$(count "$1")" -ge "$2" ]; }
wait_for "the devices to connect" 15 all connected ${#DEVICES[@]}

stop "$FIRST"
[ "$STATUS" -eq 0 ] || fail "p2pd exited $STATUS after SIGTERM"
wait_for "the devices to see the relay go" 10 all disconnected ${#DEVICES[@]}
# None of them was told to stay away: each saw its transport close.
if grep '"type":"disconnected"' "$WORK/devs.out" | grep -q 'server disconnect'; then
	fail "a device was disconnected for good: $(grep 'server disconnect' "$WORK/devs.out")"
fi

RELAY_ADDR="127.0.0.1:$PORT" start_relay
wait_for "every device to come back" 10 all connected $((2 * ${#DEVICES[@]}))
for d in "${DEVICES[@]}"; do
	id=${d%%:*}
	[ "$(grep -c "\"connected\",\"id\":\"$id\"" "$WORK/devs.out")" -eq 2 ] || fail "$id connected $(grep -c "\"connected\",\"id\":\"$id\"" "$WORK/devs.out") times"
done
echo "restart ok"

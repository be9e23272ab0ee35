#!/usr/bin/env bash
# Helpers for the command-line tests in this folder, which source this
# file. Run by itself, it checks the helpers: a relay starts on a free
# port, p2ppeer reaches it, and everything started is stopped.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
: "${BIN:=$ROOT/bin}"
WORK=$(mktemp -d)
# p2pd keeps a generated admin token in the user's state folder, where
# p2pctl finds it: the tests keep theirs in their own folder.
export XDG_STATE_HOME="$WORK/state"
PIDS=()
FDS=()

cleanup() {
	local fd pid
	for fd in "${FDS[@]}"; do eval "exec $fd>&-" 2>/dev/null || true; done
	# Devices first, relays last, so the relays have no one left to drain.
	local i
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		kill "${PIDS[i]}" 2>/dev/null || true
		wait "${PIDS[i]}" 2>/dev/null || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

# fail MESSAGE: report, show the logs, exit 1.
fail() {
	echo "FAIL: $*" >&2
	local f
	for f in "$WORK"/*.out "$WORK"/*.err "$WORK"/*.log; do
		[ -s "$f" ] || continue
		echo "--- ${f##*/}" >&2
		tail -n 30 "$f" >&2
	done
	exit 1
}

# wait_for DESCRIPTION SECONDS COMMAND...: retry COMMAND until it succeeds.
wait_for() {
	local what=$1 secs=$2
	shift 2
	local deadline=$((SECONDS + secs))
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || fail "timed out waiting for $what"
		sleep 0.05
	done
}

# start_relay [P2PD FLAGS...]: run p2pd on a free loopback port (or on
# RELAY_ADDR when set); sets URL, PORT and RELAY_PID.
start_relay() {
	local log="$WORK/p2pd-$((${#PIDS[@]})).log"
	: >"$log"
	"$BIN/p2pd" --listen "${RELAY_ADDR:-127.0.0.1:0}" "$@" 2>"$log" &
	RELAY_PID=$!
	PIDS+=("$RELAY_PID")
	wait_for "p2pd to serve" 10 grep -q 'msg="p2pd serving"' "$log"
	PORT=$(sed -n 's/.*msg="p2pd serving" addr=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -n 1)
	[ -n "$PORT" ] || fail "no port in the p2pd log"
	URL="http://127.0.0.1:$PORT"
}

# stop PID [SIGNAL]: end a background process with SIGNAL (TERM); STATUS is
# its exit code.
stop() {
	kill "-${2:-TERM}" "$1" 2>/dev/null || true
	STATUS=0
	wait "$1" || STATUS=$?
}

# peer NAME ARGS...: run p2ppeer against the relay in the background,
# stdin from PEER_STDIN (default /dev/null), stdout to $WORK/NAME.out and
# stderr to $WORK/NAME.err; sets LAST_PID.
peer() {
	local name=$1
	shift
	: >"$WORK/$name.out"
	"$BIN/p2ppeer" --url "$URL" "$@" <"${PEER_STDIN:-/dev/null}" >"$WORK/$name.out" 2>"$WORK/$name.err" &
	LAST_PID=$!
	PIDS+=("$LAST_PID")
}

# piped_peer NAME ARGS...: like peer, with p2ppeer's stdin a pipe that
# this script writes to through file descriptor 7 (echo 'emit x' >&7).
# Opening the pipe for reading and writing first lets p2ppeer open it
# without waiting for a writer.
piped_peer() {
	mkfifo "$WORK/$1.in"
	exec 7<>"$WORK/$1.in"
	FDS+=(7)
	PEER_STDIN="$WORK/$1.in" peer "$@"
}

# start_proxy PORT: forward a free loopback port to 127.0.0.1:PORT, as a
# network between a device and the relay; sets PROXY_URL and PROXY_PID.
# kill -USR1 cuts every connection and refuses new ones (the network is
# down); kill -USR2 lets connections through again.
start_proxy() {
	local out="$WORK/proxy-$((${#PIDS[@]})).port"
	: >"$out"
	node -e '
		const net = require("net");
		const target = +process.argv[1];
		const links = new Set();
		let down = false;
		const server = net.createServer((c) => {
			if (down) return c.destroy();
			const up = net.connect(target, "127.0.0.1");
			const link = [c, up];
			links.add(link);
			const end = () => { c.destroy(); up.destroy(); links.delete(link); };
			c.on("error", end).on("close", end);
			up.on("error", end).on("close", end);
			c.pipe(up);
			up.pipe(c);
		});
		process.on("SIGUSR1", () => { down = true; for (const [c, up] of links) { c.destroy(); up.destroy(); } });
		process.on("SIGUSR2", () => { down = false; });
		server.listen(0, "127.0.0.1", () => console.log(server.address().port));
	' "$1" >"$out" &
	PROXY_PID=$!
	PIDS+=("$PROXY_PID")
	wait_for "the proxy to listen" 10 grep -q . "$out"
	PROXY_URL="http://127.0.0.1:$(head -n 1 "$out")"
}

# need_compat_modules: install the JavaScript clients of compat/ (both
# socket.io-client generations) unless they are there.
need_compat_modules() {
	[ -d "$ROOT/compat/node_modules/sio2" ] && [ -d "$ROOT/compat/node_modules/sio4" ] ||
		npm ci --prefix "$ROOT/compat" --no-audit --no-fund --loglevel=error >/dev/null
}

# gen1 NAME ARGS...: run the generation-1 JavaScript device in the
# background, output to $WORK/NAME.out; sets LAST_PID.
gen1() {
	local name=$1
	shift
	need_compat_modules
	: >"$WORK/$name.out"
	node "$ROOT/compat/interop/gen1-device.mjs" --url "$URL" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
	LAST_PID=$!
	PIDS+=("$LAST_PID")
}

# has FILE PATTERN: FILE has a line matching the fixed string PATTERN.
has() { grep -qF -- "$2" "$1"; }

# connected NAME: wait until device NAME (p2ppeer --json, or gen1) says it
# is connected.
connected() {
	wait_for "$1 to connect" 10 has "$WORK/$1.out" '"type":"connected"'
}

# run_p2ppeer WANT_STATUS ARGS...: run p2ppeer in the foreground; OUT and
# ERR hold what it printed; fail unless it exits with WANT_STATUS.
run_p2ppeer() {
	local want=$1
	shift
	local status=0
	"$BIN/p2ppeer" --url "$URL" "$@" >"$WORK/run.stdout" 2>"$WORK/run.stderr" </dev/null || status=$?
	OUT=$(cat "$WORK/run.stdout")
	ERR=$(cat "$WORK/run.stderr")
	[ "$status" -eq "$want" ] || fail "p2ppeer $* exited $status, want $want; stdout: $OUT; stderr: $ERR"
}

# json FILE EXPR: parse FILE, one JSON object per line, each with a type,
# into objs and print the JSON of the JavaScript expression EXPR.
json() {
	node -e '
		const fs = require("fs");
		const [file, expr] = process.argv.slice(1);
		const objs = fs.readFileSync(file, "utf8").split("\n").filter(Boolean).map((line, i) => {
			let o;
			try { o = JSON.parse(line); } catch (e) { throw new Error(`line ${i + 1} is not JSON: ${line}`); }
			if (typeof o.type !== "string") throw new Error(`line ${i + 1} has no type: ${line}`);
			return o;
		});
		const of = (t) => objs.filter((o) => o.type === t);
		console.log(JSON.stringify(eval(expr)));
	' "$1" "$2"
}

# json_is FILE EXPR WANT: succeed when the JSON of EXPR over FILE is WANT.
json_is() { [ "$(json "$1" "$2" 2>/dev/null)" = "$3" ]; }

# expect_json FILE EXPR WANT: the JSON of EXPR over FILE is WANT.
expect_json() {
	local got
	got=$(json "$1" "$2") || fail "cannot read $1 as JSON lines"
	[ "$got" = "$3" ] || fail "${1##*/}: $2 = $got, want $3"
}

# plain FILE: FILE has no terminal escape sequences.
plain() {
	if grep -q $'\e\[' "$1"; then fail "${1##*/} has colour codes"; fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	start_relay
	run_p2ppeer 0 devices
	[ "$OUT" = "no devices" ] || fail "devices on an empty relay printed: $OUT"
	run_p2ppeer 0 --version
	stop "$RELAY_PID"
	[ "$STATUS" -eq 0 ] || fail "p2pd exited $STATUS after SIGTERM"
	echo "p2ppeer test helpers work"
fi

#!/usr/bin/env bash
# Runs the side-by-side benchmark of p2pd and the reference relay on Node's
# socket.io 4: builds p2pd and the benchmark, installs the reference relay's
# npm packages, then runs p2pbench. Not part of the test suite.
#
#   bench/run.sh                 full run: 5 rounds, then 10,000 idle devices (about 6 minutes)
#   bench/run.sh --quick         a quick look (about a minute)
#   bench/run.sh --help          every option
#   bench/run.sh profile ack     CPU and allocation profiles of p2pd under one scenario
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in go node npm; do
	command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 1; }
done
bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/" ./cmd/p2pd ./bench/cmd/p2pbench
npm ci --prefix bench/node-relay --no-audit --no-fund --loglevel=error

if [ "${1:-}" = "profile" ]; then
	shift
	"$bin/p2pbench" profile --p2pd "$bin/p2pd" "$@"
else
	label="commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
	git diff --quiet HEAD -- . ':!bench' 2>/dev/null || label="$label with uncommitted changes"
	"$bin/p2pbench" run --p2pd "$bin/p2pd" --label "$label" "$@"
fi

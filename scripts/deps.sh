#!/usr/bin/env bash
# Installs what the test suite needs beyond Go: the npm packages of the
# JavaScript compatibility tests and, from Debian's packages, tmux and
# redis-server (the Redis store's tests start their own; with CI set, they
# fail without it).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v node >/dev/null || { echo "deps: node is required (Node.js 18 or later)" >&2; exit 1; }
command -v npm >/dev/null || { echo "deps: npm is required" >&2; exit 1; }
npm ci --prefix compat --no-audit --no-fund --loglevel=error

missing=()
for tool in tmux redis-server; do
	command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	echo "deps: installing ${missing[*]} with apt-get"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

#!/usr/bin/env bash
# Runs the side-by-side benchmark of p2pd and the reference relay on Node's
# socket.io 4: builds p2pd and the benchmark, installs the reference relay's
# npm packages, then runs p2pbench. Not part of the test suite.
#
#   bench/run.sh                 full run: 5 rounds, then 10,000 idle devices (about 16 minutes)
#   bench/run.sh --quick         a quick look (about a minute and a half)
#   bench/run.sh --big           only 100,000 idle paired devices on each relay (a few minutes)
#   bench/run.sh --help          every option
#   bench/run.sh profile fleet   CPU and allocation profiles of p2pd under one scenario
#   bench/run.sh --cluster       pairs across two p2pd nodes sharing Redis, against one
#                                p2pd and against two Node relays on socket.io's Redis
#                                adapter (3 rounds, about 3 minutes; needs redis-server)
#   bench/run.sh --cluster --quick   1 round of it (about a minute)
#   bench/run.sh --cluster --help    the cluster benchmark's options
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in go node npm; do
	command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 1; }
done
if [ "${1:-}" = "--cluster" ] && ! command -v redis-server >/dev/null; then
	echo "bench: --cluster needs redis-server (Debian: apt-get install redis-server)" >&2
	exit 1
fi

# Every device is a socket in the generator and another in the relay, and
# both processes inherit this shell's open-file limit: the fleet's 10,000
# devices and --big's 100,000 need more than the usual 1,024 (or 20,000).
# Raise it for this run (beyond the hard limit only as root), within
# fs.nr_open, the most one process may have; p2pbench raises it again with
# setrlimit and says so when it is still too low.
files=262144
nr_open=$(cat /proc/sys/fs/nr_open 2>/dev/null || echo "$files")
files=$((files < nr_open ? files : nr_open))
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$files" ]; then
	if ! ulimit -Hn "$files" 2>/dev/null; then
		files=$(ulimit -Hn)
		echo "bench: the open-file limit stays at its hard limit, $files (raising that takes root or CAP_SYS_RESOURCE): enough for the default run, not for --big" >&2
	fi
fi
ulimit -Sn "$files" 2>/dev/null || true
# fs.file-max bounds the open files of the whole machine: both processes'.
file_max=$(cat /proc/sys/fs/file-max 2>/dev/null || echo 0)
if [ "$file_max" -gt 0 ] && [ "$file_max" -lt $((2 * files)) ]; then
	echo "bench: fs.file-max is $file_max, below two processes of $files open files: a big run may fail (sysctl -w fs.file-max=$((2 * files)))" >&2
fi

bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/" ./cmd/p2pd ./bench/cmd/p2pbench
npm ci --prefix bench/node-relay --no-audit --no-fund --loglevel=error

label="commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD -- . ':!bench' 2>/dev/null || label="$label with uncommitted changes"
case "${1:-}" in
profile)
	shift
	"$bin/p2pbench" profile --p2pd "$bin/p2pd" "$@"
	;;
--cluster)
	shift
	"$bin/p2pbench" cluster --p2pd "$bin/p2pd" --label "$label" "$@"
	;;
*)
	"$bin/p2pbench" run --p2pd "$bin/p2pd" --label "$label" "$@"
	for arg in "$@"; do
		if [ "$arg" = --help ] || [ "$arg" = -h ]; then
			echo
			echo "Also: bench/run.sh --cluster [--quick] runs the cluster benchmark (pairs across two p2pd"
			echo "nodes sharing Redis, against one p2pd and two Node relays on socket.io's Redis adapter);"
			echo "bench/run.sh --cluster --help lists its options. bench/run.sh profile SCENARIO profiles p2pd."
			break
		fi
	done
	;;
esac

#!/usr/bin/env bash
# Runs every command-line test script under scripts/clitest.d against the
# binaries in bin/. Each script gets BIN (the binaries' folder) and must
# clean up what it starts.
set -euo pipefail
cd "$(dirname "$0")/.."
export BIN="$PWD/bin"
status=0
shopt -s nullglob
for t in scripts/clitest.d/*.sh; do
	echo "--- $t"
	if bash "$t"; then echo "ok   $t"; else echo "FAIL $t"; status=1; fi
done
exit $status

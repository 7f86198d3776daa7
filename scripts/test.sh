#!/usr/bin/env bash
# `npm test`: installs what the tests need, type-checks, then runs unit and
# integration tests and closes with one "N passed, N failed" line.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
bash "$here/setup.sh"
source "$here/common.sh"
cd "$PROJECT_ROOT"
step "typecheck: tsc --noEmit"
npx tsc --noEmit -p .
step "tests: the command provider (go test)"
(cd engine/command-provider && GOTOOLCHAIN="${GOTOOLCHAIN:-auto}" GOFLAGS="-mod=readonly -buildvcs=false" go test ./...)
step "tests: unit and integration (vitest)"
results="${STATE_DIR}/test-results.json"
rm -f "$results"
status=0
bash "$here/with-engine.sh" npx vitest run --reporter=default --reporter=json --outputFile.json="$results" "$@" || status=$?
if [ -f "$results" ]; then
    node -e 'const r = require(process.argv[1]); console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed`)' "$results"
fi
exit "$status"

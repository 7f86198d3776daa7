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
if [ ! -f "$results" ]; then
    echo "tests: vitest wrote no results ($results); see above" >&2
    exit 1
fi
# One closing line that counts what vitest counts; a skipped test (a file
# whose beforeAll threw marks its tests skipped) fails the run like a failed one.
node -e '
const r = require(process.argv[1]);
const skipped = r.numPendingTests + r.numTodoTests;
const failedFiles = r.testResults.filter((f) => f.status === "failed").map((f) => f.name.replace(process.cwd() + "/", ""));
if (failedFiles.length > 0) console.log(`files failed: ${failedFiles.join(", ")}`);
console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
process.exit(r.numFailedTests > 0 || skipped > 0 || failedFiles.length > 0 ? 1 : 0);
' "$results" || status=1
exit "$status"

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
# The five slowest files, so a regression shows in every run; then one closing
# line that counts what vitest counts. A file that failed without a failed test
# (its beforeAll threw), a skipped test, and an error outside any test (vitest's
# "unhandled errors") each fail the run and count as failed.
node -e '
const r = require(process.argv[1]);
const name = (f) => f.name.replace(process.cwd() + "/", "");
const slowest = [...r.testResults].sort((a, b) => (b.endTime - b.startTime) - (a.endTime - a.startTime)).slice(0, 5);
console.log("slowest files:");
for (const f of slowest) console.log(`  ${((f.endTime - f.startTime) / 1000).toFixed(1).padStart(7)} s  ${name(f)}`);
const skipped = r.numPendingTests + r.numTodoTests;
const failedFiles = r.testResults.filter((f) => f.status === "failed");
const filesWithoutFailedTest = failedFiles.filter((f) => !f.assertionResults.some((a) => a.status === "failed")).length;
// vitest exits non-zero on an error outside any test, which its JSON does not count.
const vitestStatus = Number(process.argv[2]);
const unhandled = (vitestStatus !== 0 || r.success === false) && r.numFailedTests === 0 && failedFiles.length === 0 && skipped === 0 ? 1 : 0;
if (failedFiles.length > 0) console.log(`files failed: ${failedFiles.map(name).join(", ")}`);
if (unhandled) console.log(`vitest exited ${vitestStatus} with every test passed: an error outside any test (see "Unhandled Errors" above)`);
const failed = r.numFailedTests + filesWithoutFailedTest + unhandled;
console.log(`tests: ${r.numPassedTests} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || skipped > 0 ? 1 : 0);
' "$results" "$status" || status=1
exit "$status"

#!/usr/bin/env bash
# `npm test`: installs what the tests need, then runs unit and integration tests.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
bash "$here/setup.sh"
source "$here/common.sh"
cd "$PROJECT_ROOT"
step "typecheck: tsc --noEmit"
npx tsc --noEmit -p .
step "tests: unit and integration (vitest)"
exec bash "$here/with-engine.sh" npx vitest run "$@"

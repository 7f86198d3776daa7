#!/usr/bin/env bash
# `npm test`: installs what the tests need, then runs unit and integration tests.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
bash "$here/setup.sh"
source "$here/common.sh"
step "tests: unit and integration (vitest)"
cd "$PROJECT_ROOT"
exec bash "$here/with-engine.sh" npx vitest run "$@"

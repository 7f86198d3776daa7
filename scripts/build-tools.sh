#!/usr/bin/env bash
# Compiles the project's CLIs (bin/, and the lib/ they use) into .state/tools,
# so each gate a command resource runs starts in ~0.1 s instead of ts-node's
# ~0.6 s. Idempotent: rebuilds only when a source changed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$PROJECT_ROOT"
stamp_file="${STATE_DIR}/tools/.stamp"
stamp="$(node --version) $(hash_files tsconfig.json tsconfig.tools.json package-lock.json bin/*.ts lib/*.ts components/*.ts)"
if [ "$(cat "$stamp_file" 2>/dev/null)" = "$stamp" ]; then
    step "tools: up to date in .state/tools"
    exit 0
fi
step "tools: compiling bin/ into .state/tools"
rm -rf "${STATE_DIR}/tools"
npx tsc -p tsconfig.tools.json
printf '%s' "$stamp" >"$stamp_file"

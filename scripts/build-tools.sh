#!/usr/bin/env bash
# Compiles the project's CLIs (bin/, and the lib/ they use) so each step a
# command resource runs starts in ~0.1 s instead of ts-node's ~0.6 s, and the
# program (index.ts), which program.js runs while it is current.
# Idempotent: rebuilds only when a source changed. Each build goes to its own
# folder (.state/tools-<stamp>) and .state/tools is switched to it in one
# rename, so a step running during a rebuild never sees a half-built tree.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$PROJECT_ROOT"
# Taken before the sources are hashed: a source saved after this moment is newer than the build.
mkdir -p "$STATE_DIR"
touch "${STATE_DIR}/.tools-check-$$"
trap 'rm -f "${STATE_DIR}/.tools-check-$$"' EXIT
mapfile -t sources < <(find bin lib components -name '*.ts' | sort)
stamp="$(hash_files tsconfig.json tsconfig.tools.json package-lock.json scripts/build-tools.sh program.js index.ts "${sources[@]}")-$(node --version)"
build_dir="${STATE_DIR}/tools-${stamp}"
if [ "$(readlink "${STATE_DIR}/tools" 2>/dev/null)" = "tools-${stamp}" ] && [ -f "${build_dir}/.complete" ]; then
    # The sources hash as the build's: a file saved again with the same content keeps the build current for program.js.
    mv -f "${STATE_DIR}/.tools-check-$$" "${build_dir}/.sources-at"
    step "tools: up to date in .state/tools"
    exit 0
fi
step "tools: compiling bin/ and the program into .state/tools"
rm -rf "$build_dir"
# Before tsc reads the sources: program.js runs this build only while no source is newer.
mkdir -p "$build_dir"
mv -f "${STATE_DIR}/.tools-check-$$" "${build_dir}/.sources-at"
npx tsc -p tsconfig.tools.json --outDir "$build_dir"
# Launchers found on PATH (scripts/engine-env.sh): stored commands name them,
# never a path of this checkout or of node.
mkdir -p "${build_dir}/path"
for pair in protea-rollout:rollout protea-drill-db:drill-db; do
    launcher="${build_dir}/path/${pair%%:*}"
    printf '#!/bin/sh\nexec node "$(dirname "$(readlink -f "$0")")/../bin/%s.js" "$@"\n' "${pair#*:}" >"$launcher"
    chmod 0755 "$launcher"
done
touch "${build_dir}/.complete"
# A real folder left by an older set-up is moved aside first.
if [ -d "${STATE_DIR}/tools" ] && [ ! -L "${STATE_DIR}/tools" ]; then
    mv "${STATE_DIR}/tools" "${STATE_DIR}/tools-old-$$"
fi
ln -sfn "tools-${stamp}" "${STATE_DIR}/tools.next"
mv -T "${STATE_DIR}/tools.next" "${STATE_DIR}/tools"
# Keep the newest two builds: a step started just before the switch still finds its files.
ls -dt "${STATE_DIR}"/tools-* 2>/dev/null | tail -n +3 | xargs -r rm -rf

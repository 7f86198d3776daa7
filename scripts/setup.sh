#!/usr/bin/env bash
# Installs everything the project needs, idempotently: npm packages, the Pulumi
# engine, PostgreSQL server binaries and the application fixture's venv.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
source "$here/common.sh"

install_npm_packages() {
    local stamp_file="${PROJECT_ROOT}/node_modules/.protea-install.stamp" stamp
    stamp="$(node --version) $(hash_files package.json package-lock.json)"
    if [ "$(cat "$stamp_file" 2>/dev/null)" = "$stamp" ]; then
        step "npm: packages up to date"
        return
    fi
    step "npm: installing packages from package-lock.json"
    # Install scripts stay off: @pulumi/command's would download a provider
    # binary from the internet; ensure-engine.sh provides it instead.
    (cd "$PROJECT_ROOT" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    printf '%s' "$stamp" >"$stamp_file"
}

install_npm_packages
bash "$here/ensure-engine.sh"
bash "$here/build-tools.sh"
if [ -f "$here/setup-fixture.sh" ]; then
    bash "$here/setup-fixture.sh"
fi

#!/usr/bin/env bash
# Runs a command with the project's Pulumi engine (built on first use) and its
# offline settings, e.g. `bash scripts/with-engine.sh pulumi preview --stack drill`.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
bash "$here/ensure-engine.sh"
bash "$here/build-tools.sh"
source "$here/engine-env.sh"
exec "$@"

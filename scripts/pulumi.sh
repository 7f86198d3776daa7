#!/usr/bin/env bash
# `npm run pulumi -- <args>`: the project's engine with the project's settings.
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/with-engine.sh" pulumi "$@"

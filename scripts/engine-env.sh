# The environment every Pulumi run of this project uses: the project's engine,
# offline settings, a local file:// backend and a passphrase secrets provider.
# Operators override any of them by exporting the variable first. Sourced.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ENGINE_BIN="${STATE_DIR}/engine/bin"
if [ -x "${ENGINE_BIN}/pulumi" ]; then
    export PATH="${ENGINE_BIN}:${PATH}"
fi
# The project's CLIs, which stored commands call by name (lib/runbook/rolloutCli.ts).
case ":${PATH}:" in
    *":${STATE_DIR}/tools/path:"*) ;;
    *) export PATH="${STATE_DIR}/tools/path:${PATH}" ;;
esac
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_HOME="${PULUMI_HOME:-${STATE_DIR}/pulumi-home}"
# The program starts seconds faster without ts-node's type check; `npm test`
# type-checks the whole project with tsc instead.
export PULUMI_NODEJS_TRANSPILE_ONLY="${PULUMI_NODEJS_TRANSPILE_ONLY:-true}"
if [ -z "${PULUMI_BACKEND_URL:-}" ]; then
    mkdir -p "${STATE_DIR}/backend"
    export PULUMI_BACKEND_URL="file://${STATE_DIR}/backend"
fi
# The passphrase encrypts stack secrets (rollout:dbUrl). Unless the operator
# brings one, a random one is kept in a 0600 file beside the local backend.
if [ -z "${PULUMI_CONFIG_PASSPHRASE:-}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
    passphrase_file="${STATE_DIR}/passphrase"
    if [ ! -s "$passphrase_file" ]; then
        mkdir -p "$STATE_DIR"
        (umask 077 && head -c 32 /dev/urandom | base64 >"$passphrase_file")
    fi
    export PULUMI_CONFIG_PASSPHRASE_FILE="$passphrase_file"
fi

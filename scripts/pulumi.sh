#!/usr/bin/env bash
# `npm run pulumi -- <args>`: the project's engine with the project's settings.
#
# A drill stack (`--stack drill`, or any stack whose Pulumi.<stack>.yaml sets
# drill:engine) runs in its working folder .state/drill/<stack> (`--cwd`):
# its config there is a working copy of the tracked template, so what the
# engine writes (encryptionsalt, secrets, `config set`) never lands in a
# tracked file. The folder is made on first use (bin/drill.ts --prepare).
# Relative file arguments of such a command are then relative to that folder.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
source "$here/common.sh"

# The stack the arguments name (--stack X, --stack=X, -s X, -sX), if any, and
# pulumi's command (the first word that is not a flag or a global flag's value).
stack=""
command=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[i]}" in
        --stack | -s) stack="${args[i + 1]:-}" ;;
        --stack=*) stack="${args[i]#--stack=}" ;;
        -s?*) stack="${args[i]#-s}" ;;
        --cwd | -C | --color | --tracing | --profiling | --memprofilerate | --verbose | -v) ((i += 1)) ;;
        -*) ;;
        *) [ -n "$command" ] || command="${args[i]}" ;;
    esac
done
# `up` runs through its guard (bin/guardedUp.ts): an interrupted update leaves
# no process running and no writer paused unannounced, and names `npm run recover`.
pulumi=(pulumi)
if [ "$command" = up ] || [ "$command" = update ]; then
    pulumi=(node "${STATE_DIR}/tools/bin/guardedUp.js")
fi

is_drill_stack() {
    [[ "$1" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || return 1
    [ -f "${STATE_DIR}/drill/$1/Pulumi.$1.yaml" ] && return 0
    if [ -f "${PROJECT_ROOT}/Pulumi.$1.yaml" ]; then
        grep -qE '^[[:space:]]*drill:engine[[:space:]]*:' "${PROJECT_ROOT}/Pulumi.$1.yaml"
    else
        [ -f "${PROJECT_ROOT}/Pulumi.drill.yaml" ] && [ "$1" = drill ]
    fi
}

if [ -n "$stack" ] && is_drill_stack "$stack"; then
    work_dir="${STATE_DIR}/drill/${stack}"
    if [ ! -f "${work_dir}/Pulumi.${stack}.yaml" ] || [ ! -f "${work_dir}/Pulumi.yaml" ] ||
        [ "${PROJECT_ROOT}/Pulumi.yaml" -nt "${work_dir}/Pulumi.yaml" ]; then
        bash "$here/with-engine.sh" node "${STATE_DIR}/tools/bin/drill.js" --prepare --stack "$stack" >/dev/null
    fi
    # A working copy that lost its salt takes the stack's own from its state.
    export PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER=true
    exec bash "$here/with-engine.sh" "${pulumi[@]}" --cwd "$work_dir" "$@"
fi
exec bash "$here/with-engine.sh" "${pulumi[@]}" "$@"

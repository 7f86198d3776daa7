#!/usr/bin/env bash
# Makes sure the project has a Pulumi engine: the CLI, the Node.js language
# host and the command provider plugin. Uses a `pulumi` of the pinned version
# (or newer) found on PATH; otherwise builds the engine from the Go module proxy
# into .state/engine (gitignored). Idempotent: a second run only checks stamps.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ENGINE_DIR="${STATE_DIR}/engine"
ENGINE_BIN="${ENGINE_DIR}/bin"
PROVIDER_DIR="${ENGINE_DIR}/providers"
# A Go older than go.mod asks for fetches the right toolchain from the module proxy.
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
export GOFLAGS="-mod=readonly -buildvcs=false"

# Read with sed, not node: this runs before every `npm run` that uses the engine.
pinned_version() {
    local version
    version="$(sed -n "s/^ *\"${1//\//\\/}\": *\"\([^\"]*\)\".*/\1/p" "${PROJECT_ROOT}/package.json" | head -n1)"
    [ -n "$version" ] || die "package.json pins no version of $1"
    printf '%s' "$version"
}
PULUMI_VERSION="$(pinned_version @pulumi/pulumi)"
COMMAND_VERSION="$(pinned_version @pulumi/command)"

grep -q "github.com/pulumi/pulumi/pkg/v3 v${PULUMI_VERSION}\b" "${PROJECT_ROOT}/engine/go.mod" ||
    die "engine/go.mod does not require pulumi pkg/v3 v${PULUMI_VERSION}, the @pulumi/pulumi version package.json pins; update them together"

require_go() {
    command -v go >/dev/null 2>&1 ||
        die "building the Pulumi engine needs Go (1.21 or newer; it fetches the 1.25.11 toolchain it needs from the Go module proxy), or a pulumi >= v${PULUMI_VERSION} on PATH"
}

# version_at_least <have> <want>: true when have >= want (both vX.Y.Z or X.Y.Z).
version_at_least() {
    [ "$(printf '%s\n%s\n' "${1#v}" "${2#v}" | sort -V | head -n1)" = "${2#v}" ]
}

# A pulumi already on PATH (not ours) that is new enough, with its language host.
system_pulumi() {
    local found have
    found="$(PATH="$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$ENGINE_BIN" | paste -sd:)" command -v pulumi 2>/dev/null)" || return 1
    [ -x "$(dirname "$found")/pulumi-language-nodejs" ] || return 1
    have="$(PULUMI_SKIP_UPDATE_CHECK=true "$found" version 2>/dev/null)" || return 1
    version_at_least "$have" "$PULUMI_VERSION" || return 1
    printf '%s' "$found"
}

build_cli() {
    local stamp_file="${ENGINE_DIR}/cli.stamp" stamp
    stamp="v${PULUMI_VERSION} $(go version 2>/dev/null) $(hash_files engine/go.mod engine/go.sum engine/language-host/go.mod engine/language-host/go.sum)"
    if [ -x "${ENGINE_BIN}/pulumi" ] && [ -x "${ENGINE_BIN}/pulumi-language-nodejs" ] &&
        [ "$(cat "$stamp_file" 2>/dev/null)" = "$stamp" ]; then
        step "engine: pulumi v${PULUMI_VERSION} already built in .state/engine/bin"
        return
    fi
    mkdir -p "$ENGINE_BIN"
    local ldflags="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v${PULUMI_VERSION}"
    step "engine: building the Pulumi CLI v${PULUMI_VERSION} from the Go module proxy (first time: several minutes, ~1.5 GB of module cache)"
    (cd "${PROJECT_ROOT}/engine" &&
        go build -trimpath -tags osusergo,grpcnotrace -ldflags "$ldflags" \
            -o "${ENGINE_BIN}/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
    step "engine: building the Node.js language host"
    (cd "${PROJECT_ROOT}/engine/language-host" &&
        go build -trimpath -tags osusergo,grpcnotrace -ldflags "$ldflags" \
            -o "${ENGINE_BIN}/pulumi-language-nodejs" github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs)
    printf '%s' "$stamp" >"$stamp_file"
}

# sha256_of <file>: the file's sha256, hex. No pipe: a failure stops the script.
sha256_of() {
    local sum
    sum="$(sha256sum "$1")"
    printf '%s' "${sum%% *}"
}

# The command provider is installed into PULUMI_HOME's plugin cache, where the
# engine looks for `command` v${COMMAND_VERSION} when @pulumi/command asks for it.
# What is installed is decided from files, never from `pulumi plugin ls`. The
# stamp file holds the source stamp of the project's build (line 1) and the
# sha256 of the binary the project installed (line 2, `sha256 <hex>`). A plugin
# binary the project did not install (an operator's, e.g. upstream's release
# installed with `pulumi plugin install resource command <v> --file <binary>
# --reinstall`) is used as it is and never replaced, unless
# PROTEA_REINSTALL_COMMAND_PROVIDER=1.
install_command_provider() {
    local pulumi_bin="$1"
    local plugins="${PULUMI_HOME}/plugins"
    local stamp_file="${plugins}/.protea-command-provider.stamp"
    local plugin_dir="${plugins}/resource-command-v${COMMAND_VERSION}"
    local plugin_bin="${plugin_dir}/pulumi-resource-command"
    local built_bin="${PROVIDER_DIR}/pulumi-resource-command"
    local sources stamp recorded_stamp="" recorded_sha="" installed_sha ours=false
    # Globbed from the project root, so the script runs from any directory.
    sources=("${PROJECT_ROOT}"/engine/command-provider/*.go)
    stamp="${COMMAND_VERSION} $(go version 2>/dev/null) $(hash_files engine/command-provider/go.mod engine/command-provider/go.sum "${sources[@]#"${PROJECT_ROOT}/"}")"
    if [ -f "$stamp_file" ]; then
        recorded_stamp="$(sed -n 1p "$stamp_file")"
        recorded_sha="$(sed -n 's/^sha256 //p' "$stamp_file")"
    fi

    # Pulumi leaves a .partial marker beside a plugin whose install did not
    # finish and treats it as absent; so does this script.
    if [ "${PROTEA_REINSTALL_COMMAND_PROVIDER:-}" = 1 ]; then
        step "engine: PROTEA_REINSTALL_COMMAND_PROVIDER=1: reinstalling the project's command provider ${COMMAND_VERSION}"
    elif [ -f "$plugin_bin" ] && [ ! -e "${plugin_dir}.partial" ]; then
        # Hashing the binary costs a few hundred ms: reuse the recorded hash
        # while the file is the very same one (size, mtime, inode).
        if [ -n "$recorded_sha" ] && [ "$(sed -n 's/^stat //p' "$stamp_file")" = "$(stat -c '%s %Y %i' "$plugin_bin")" ]; then
            installed_sha="$recorded_sha"
        else
            installed_sha="$(sha256_of "$plugin_bin")"
        fi
        if [ -n "$recorded_sha" ] && [ "$installed_sha" = "$recorded_sha" ]; then
            ours=true
        elif [ -f "$built_bin" ] && [ "$installed_sha" = "$(sha256_of "$built_bin")" ]; then
            # The project's last build, installed before the stamp recorded
            # its sha256 (an older stamp, or an install cut short).
            ours=true
        fi
        if [ "$ours" != true ]; then
            step "engine: a command provider ${COMMAND_VERSION} not built by the project is installed at ${plugin_bin} (sha256 ${installed_sha:0:12}); using it as it is. To go back to the project's own, remove ${plugin_dir} or set PROTEA_REINSTALL_COMMAND_PROVIDER=1"
            return
        fi
        if [ "$recorded_stamp" = "$stamp" ]; then
            if [ "$recorded_sha" != "$installed_sha" ] || ! grep -q '^stat ' "$stamp_file"; then
                printf '%s\nsha256 %s\nstat %s\n' "$stamp" "$installed_sha" "$(stat -c '%s %Y %i' "$plugin_bin")" >"${stamp_file}.tmp"
                mv -f "${stamp_file}.tmp" "$stamp_file"
            fi
            step "engine: command provider ${COMMAND_VERSION} already installed"
            return
        fi
        step "engine: the installed command provider ${COMMAND_VERSION} was built from other sources or another Go; rebuilding it"
    elif [ -e "${plugin_dir}.partial" ]; then
        step "engine: the command provider ${COMMAND_VERSION} at ${plugin_dir} is half-installed (${plugin_dir}.partial); installing the project's own"
    fi

    require_go
    mkdir -p "$PROVIDER_DIR" "$plugins"
    step "engine: building the command provider ${COMMAND_VERSION}"
    (cd "${PROJECT_ROOT}/engine/command-provider" &&
        CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$built_bin" .)
    step "engine: installing the command provider into ${PULUMI_HOME}"
    "$pulumi_bin" plugin install resource command "${COMMAND_VERSION}" \
        --file "$built_bin" --reinstall >/dev/null
    [ -f "$plugin_bin" ] || die "pulumi plugin install did not leave ${plugin_bin}"
    installed_sha="$(sha256_of "$plugin_bin")"
    [ "$installed_sha" = "$(sha256_of "$built_bin")" ] ||
        die "the command provider installed at ${plugin_bin} differs from the one just built at ${built_bin}"
    printf '%s\nsha256 %s\nstat %s\n' "$stamp" "$installed_sha" "$(stat -c '%s %Y %i' "$plugin_bin")" >"${stamp_file}.tmp"
    mv -f "${stamp_file}.tmp" "$stamp_file"
}

main() {
    export PULUMI_SKIP_UPDATE_CHECK=true
    export PULUMI_HOME="${PULUMI_HOME:-${STATE_DIR}/pulumi-home}"
    mkdir -p "$PULUMI_HOME"
    local pulumi_bin
    if pulumi_bin="$(system_pulumi)"; then
        step "engine: using $pulumi_bin ($("$pulumi_bin" version))"
    else
        require_go
        build_cli
        pulumi_bin="${ENGINE_BIN}/pulumi"
    fi
    install_command_provider "$pulumi_bin"
}

main "$@"

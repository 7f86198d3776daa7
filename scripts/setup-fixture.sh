#!/usr/bin/env bash
# Prepares what the integration tests and the local drill need, idempotently:
#   1. PostgreSQL server binaries (initdb, pg_ctl, postgres) from Debian;
#   2. the PROTEA fixture's Python venv at .state/venv, rebuilt only when
#      test/fixtures/protea/requirements.txt (or the Python it was built with)
#      changes;
#   3. the billing fixture's Python venv at .state/venv-billing, the same way
#      from test/fixtures/billing/requirements.txt (psycopg2, no psycopg 3).
# A second run does no work and finishes well under two seconds.
set -euo pipefail

project_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

step() { printf 'setup-fixture: %s\n' "$*"; }
fail() { printf 'setup-fixture: error: %s\n' "$*" >&2; exit 1; }

has_server_binaries() {
    local dir="$1"
    [[ -x "$dir/initdb" && -x "$dir/pg_ctl" && -x "$dir/postgres" ]]
}

# Same search order as lib/postgres/cluster/serverBinaries.ts: PATH, Debian's versioned
# directories (newest first), then pg_config --bindir.
find_postgres_bindir() {
    local candidate
    if candidate="$(command -v initdb 2>/dev/null)"; then
        candidate="$(dirname "$(readlink -f "$candidate")")"
        if has_server_binaries "$candidate"; then echo "$candidate"; return 0; fi
    fi
    for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -V -r); do
        if has_server_binaries "$candidate"; then echo "$candidate"; return 0; fi
    done
    if candidate="$(pg_config --bindir 2>/dev/null)" && has_server_binaries "$candidate"; then
        echo "$candidate"; return 0
    fi
    return 1
}

ensure_postgres() {
    local bindir
    if bindir="$(find_postgres_bindir)"; then
        step "postgres: server binaries in $bindir"
        return
    fi
    if [[ "$(id -u)" -ne 0 ]]; then
        fail "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; install Debian's 'postgresql' package (sudo apt-get install postgresql) and run this script again"
    fi
    step "postgres: installing Debian's postgresql package (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    bindir="$(find_postgres_bindir)" || fail "apt-get installed postgresql but initdb/pg_ctl/postgres are still not found"
    step "postgres: server binaries in $bindir"
}

pick_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3 python3.12 python3.11 /usr/bin/python3; do
        [[ -n "$candidate" ]] || continue
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

# ensure_venv REQUIREMENTS VENV_DIR: builds VENV_DIR from REQUIREMENTS unless the
# stamp file in it says that it already was, with the same requirements and Python.
ensure_venv() {
    local requirements="$1" venv_dir="$2"
    local stamp_file="$venv_dir/.requirements.sha256"
    local name rel_venv rel_requirements python wanted_stamp
    name="$(basename "$venv_dir")"          # venv, venv-billing: prefixes the messages
    rel_venv="${venv_dir#"$project_root"/}"
    rel_requirements="${requirements#"$project_root"/}"
    [[ -f "$requirements" ]] || fail "$name: $rel_requirements not found"
    python="$(pick_python)" || fail "no Python >= 3.9 found; install Debian's 'python3' and 'python3-venv' packages"
    # The stamp covers the interpreter too: a venv is tied to the Python that made it.
    wanted_stamp="$( { sha256sum "$requirements" | cut -d' ' -f1; "$python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)"

    if [[ -x "$venv_dir/bin/python" && -f "$stamp_file" && "$(cat "$stamp_file")" == "$wanted_stamp" ]]; then
        step "$name: up to date ($rel_venv, requirements unchanged)"
        return
    fi

    step "$name: creating $rel_venv with $python ($("$python" -c 'import platform; print(platform.python_version())'))"
    rm -rf "$venv_dir"
    mkdir -p "$(dirname "$venv_dir")"
    if ! "$python" -m venv "$venv_dir" 2>/dev/null; then
        rm -rf "$venv_dir"
        if [[ "$(id -u)" -eq 0 && "$python" == /usr/bin/* ]]; then
            step "$name: installing Debian's python3-venv package (apt-get)"
            DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
            "$python" -m venv "$venv_dir"
        else
            fail "'$python -m venv' failed; install Debian's 'python3-venv' package"
        fi
    fi

    step "$name: installing $rel_requirements"
    "$venv_dir/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$requirements"
    # Written last, so an interrupted install is retried on the next run.
    echo "$wanted_stamp" >"$stamp_file"
    step "$name: ready ($venv_dir/bin/python)"
}

ensure_postgres
ensure_venv "$project_root/test/fixtures/protea/requirements.txt" "$project_root/.state/venv"
ensure_venv "$project_root/test/fixtures/billing/requirements.txt" "$project_root/.state/venv-billing"
step "done"

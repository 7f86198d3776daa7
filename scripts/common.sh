# Shared by the project's shell scripts: the project root and a progress line.
# Sourced, never run.
PROJECT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${PROJECT_ROOT}/.state"

# step <what>: one progress line on stderr, so stdout stays parseable.
step() {
    printf '==> %s\n' "$*" >&2
}

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# hash_files <file>...: one digest over the files' names and contents.
hash_files() {
    (cd "$PROJECT_ROOT" && sha256sum "$@" | sha256sum | cut -c1-16)
}

# Sourced by scripts/demo and scripts/test: find a working Python 3.10+.
# pyenv shims can exist for versions that are not active, so each candidate
# is run before it is trusted. Every pyenv version's bin/ also goes on PATH,
# so that tox finds python3.10 ... python3.13.
PYENV_VERSIONS="${PYENV_ROOT:-$HOME/.pyenv}/versions"
if [ -d "$PYENV_VERSIONS" ]; then
    for bin in "$PYENV_VERSIONS"/3.1[0-9]*/bin; do PATH="$bin:$PATH"; done
    export PATH
fi

pick_python() {
    local cand
    for cand in python3.13 python3.12 python3.11 python3.10 python3; do
        if "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
            command -v "$cand"
            return 0
        fi
    done
    echo "Python 3.10 or newer is needed." >&2
    return 1
}

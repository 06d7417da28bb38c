# Sourced by scripts/test, scripts/bench and .ci/run: the Debian packages a
# script needs. `need ...` lists the missing ones, then `install_missing`
# installs them when it may (root, with apt-get); otherwise it says what to
# install, and stops the script when the caller cannot go on without them
# (--required) or under CI=true, where a skipped test would pass unnoticed.
MISSING_PACKAGES=()

# need COMMAND PACKAGE: PACKAGE is missing unless COMMAND is on PATH.
need() {
    command -v "$1" >/dev/null || MISSING_PACKAGES+=("$2")
}

# What the tests use: Redis, Chromium for the browser tests, GNU gettext for
# tests/test_i18n.py (makemessages), and PostgreSQL (its server binaries, not
# on PATH) for tests/test_postgres.py.
need_test_packages() {
    need redis-server redis-server
    need xgettext gettext
    need redis-cli redis-tools
    need chromium chromium
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || MISSING_PACKAGES+=(postgresql)
}

install_missing() {
    if [ "${#MISSING_PACKAGES[@]}" -eq 0 ]; then
        return 0
    fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "Installing ${MISSING_PACKAGES[*]} (Debian packages)..."
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${MISSING_PACKAGES[@]}" >/dev/null
        MISSING_PACKAGES=()
        return 0
    fi
    echo "Missing ${MISSING_PACKAGES[*]}: install them (e.g. sudo apt-get install ${MISSING_PACKAGES[*]})." >&2
    if [ "${1:-}" = --required ] || [ "${CI:-}" = true ]; then
        exit 1
    fi
}

#!/usr/bin/env bash
# The project's test command (README "Run the tests"; CI runs exactly this).
# Installs what the tests need when it is missing, then runs every check.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=
need_pkg() { # need_pkg <probe-command> <debian-package>...
  local probe=$1; shift
  if ! eval "$probe" >/dev/null 2>&1; then
    echo "== installing $* (missing)"
    if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
  fi
}

need_pkg 'ls /usr/lib/postgresql/*/bin/initdb' postgresql
need_pkg 'command -v redis-server' redis-server
# The login tests run a real OpenID Connect provider (npm oidc-provider, tests/oidc).
need_pkg 'command -v node && command -v npm' nodejs npm
# The API fuzzing check (tests/checks/schemathesis.sh) installs schemathesis into a venv.
need_pkg 'python3 -c "import ensurepip, venv"' python3 python3-venv
if [ ! -d tests/oidc/node_modules/oidc-provider ]; then
  echo "== npm ci (tests/oidc)"
  (cd tests/oidc && npm ci --no-audit --no-fund)
fi

# The web interface's browser tests drive Debian's Chromium through chromedriver and
# check every page with axe-core (npm, tests/browser).
need_pkg 'test -x /usr/bin/chromium && test -x /usr/bin/chromedriver' chromium chromium-driver
if [ ! -d tests/browser/node_modules/axe-core ]; then
  echo "== npm ci (tests/browser)"
  (cd tests/browser && npm ci --no-audit --no-fund)
fi
# Installed above, so a missing browser is a failure here, not a skip.
export PEK_REQUIRE_BROWSER=1

# Compile-time checked SQL builds from the committed offline data (.sqlx/), never from
# whatever database a DATABASE_URL in the environment points at; tests/checks/sqlx.sh
# checks that data against the migrations.
export SQLX_OFFLINE=true
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
for extra in tests/checks/*.sh; do
  [ -e "$extra" ] || continue
  echo "== $extra"
  bash "$extra"
done
echo "== all checks passed"

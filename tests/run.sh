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

# Every part is timed; the table at the end is what BENCHMARKS.md's "test command" rows
# come from.
TIMES=()
SKIPPED=()
step() { # step <name> <command>...
  local name=$1; shift
  echo "== $name"
  local t0; t0=$(date +%s)
  local rc=0
  "$@" || rc=$?
  local dt=$(( $(date +%s) - t0 ))
  if [ "$rc" = 3 ] && [[ "$name" == tests/checks/* ]]; then
    # A check that could not run here (exit 3, after its own "*** SKIPPED" line).
    SKIPPED+=("$name"); TIMES+=("$(printf '%-36s %5d s  SKIPPED' "$name" "$dt")"); return 0
  fi
  TIMES+=("$(printf '%-36s %5d s' "$name" "$dt")")
  if [ "$rc" != 0 ]; then
    printf '%s\n' "${TIMES[@]}"
    echo "== FAILED: $name (exit $rc)"
    exit "$rc"
  fi
}
T0=$(date +%s)
step "cargo fmt --check" cargo fmt --all -- --check
step "cargo clippy" cargo clippy --workspace --all-targets --locked -- -D warnings
# One build of the whole workspace with one feature set (dev-dependencies included): the
# checks below run these very binaries (target/debug/pek, pek-operator, the e2e suite, the
# examples) and never compile anything again.
step "cargo test (build)" cargo test --workspace --locked --no-run
step "cargo test (run)" cargo test --workspace --locked
for extra in tests/checks/*.sh; do
  [ -e "$extra" ] || continue
  step "$extra" bash "$extra"
done
echo "== times"
printf '  %s\n' "${TIMES[@]}"
printf '  %-36s %5d s\n' "total" $(( $(date +%s) - T0 ))
if ((${#SKIPPED[@]})); then
  echo "*** NOT EVERYTHING RAN: ${SKIPPED[*]} SKIPPED (see the *** SKIPPED lines above); every other check passed ***"
else
  echo "== all checks passed"
fi

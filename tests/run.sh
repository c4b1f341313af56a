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
record() { # record <name> <exit status> <seconds>: a SKIPPED (3) check or a failure ends here
  local name=$1 rc=$2 dt=$3
  if [ "$rc" = 3 ] && [[ "$name" == tests/checks/* ]]; then
    # A check that could not run here (exit 3, after its own "*** SKIPPED" line).
    SKIPPED+=("$name"); TIMES+=("$(printf '%-44s %5d s  SKIPPED' "$name" "$dt")"); return 0
  fi
  TIMES+=("$(printf '%-44s %5d s' "$name" "$dt")")
  if [ "$rc" != 0 ]; then
    printf '  %s\n' "${TIMES[@]}"
    echo "== FAILED: $name (exit $rc)"
    exit "$rc"
  fi
}
step() { # step <name> <command>...
  local name=$1; shift
  echo "== $name"
  local t0; t0=$(date +%s)
  local rc=0
  "$@" || rc=$?
  record "$name" "$rc" $(( $(date +%s) - t0 ))
}
T0=$(date +%s)
step "cargo fmt --check" cargo fmt --all -- --check

# Clippy is the compiler of the workspace's own crates in the one build below, with the
# arguments `cargo clippy -- -D warnings` would give it: the same lints on the same targets as
# `cargo clippy --workspace --all-targets -- -D warnings` (lib, bins, tests, examples; there are
# no benches), while the dependencies are compiled once, for the build, instead of once more in
# check mode for clippy. Exported, so every cargo call of the checks sees the same build.
CLIPPY_DRIVER=$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver || true)
[ -x "$CLIPPY_DRIVER" ] || { echo "clippy-driver not found (rustup component add clippy)" >&2; exit 1; }
export RUSTC_WORKSPACE_WRAPPER=$CLIPPY_DRIVER
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
# One build of the whole workspace with one feature set (dev-dependencies included): the
# checks below run these very binaries (target/debug/pek, pek-operator, the e2e suite, the
# examples) and never compile anything again.
# A fresh build gains nothing from incremental compilation's bookkeeping.
export CARGO_INCREMENTAL=0
build() {
  mkdir -p target
  # The test executables it made, by target name (a check runs its suite from this list
  # rather than through cargo, whose build directory lock `cargo test` holds meanwhile).
  cargo test --workspace --locked --no-run --message-format=json-render-diagnostics \
    | python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["target"]["name"], m["manifest_path"].rsplit("/", 1)[0], m["executable"])
' >target/test-executables.txt
}

# helm and kubectl (target/tools), which the Kubernetes checks use; the chart checks with
# them (helm.sh without arguments) run in the background with the others.
mkdir -p target
step "helm + kubectl (tests/checks/helm.sh --tools-only)" bash tests/checks/helm.sh --tools-only
step "cargo clippy + build (cargo test --no-run)" build
# Tells the checks after it that the build is done: a check must not wait for the build
# directory lock that `cargo test` holds while the tests run.
export PEK_TEST_BUILD_DONE=1
# A check marked "run.sh: in the background" (mostly waiting for a cluster) runs beside the
# rest; its output is shown when it ends. They start after the build, not beside it: started
# before it (waiting for it with tests/build-wait.sh), an idle cluster, the control plane and
# the chart checks took so much of the two cores that a fresh build went from ≈ 300 s to
# 472 s, far more than the cluster's start-up they overlapped.
BG=() BG_PID=() BG_T0=()
# If the run stops early, a background check is stopped too (and cleans up after itself:
# k8s-node.sh takes its node down).
stop_background() {
  local p
  for p in "${BG_PID[@]}"; do
    kill -0 "$p" 2>/dev/null || continue
    kill -TERM "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
}
trap stop_background EXIT
for extra in tests/checks/*.sh; do
  if grep -q '^# run.sh: in the background' "$extra"; then
    log="target/$(basename "$extra" .sh).log"
    echo "== $extra (in the background, output in $log)"
    # Its exit status and end time are written when it ends, so its time is its own.
    rm -f "$log.end"
    # The check runs as the wrapper's child, and a TERM to the wrapper is passed on to it:
    # killed itself, the wrapper would leave the check running (a node still up when the
    # next run starts).
    (
      bash "$extra" >"$log" 2>&1 &
      check=$!
      trap 'kill -TERM "$check" 2>/dev/null' TERM
      rc=0
      wait "$check" || rc=$?
      # A TERM ends the first wait at once; the check's own cleanup is waited for here.
      if kill -0 "$check" 2>/dev/null; then rc=0; wait "$check" || rc=$?; fi
      echo "$rc $(date +%s)" >"$log.end"
      exit "$rc"
    ) &
    BG+=("$extra"); BG_PID+=($!); BG_T0+=("$(date +%s)")
  fi
done
# The test binaries of that build (what `cargo test --workspace` would run), a few at a time,
# all on one throwaway PostgreSQL (localpg's test_cluster: one initdb, and each schema
# migrated once into a template database instead of once per test).
step "tests (run: binaries in parallel, one PostgreSQL)" \
  target/debug/examples/test_cluster -- bash tests/test-binaries.sh
for extra in tests/checks/*.sh; do
  grep -q '^# run.sh: in the background' "$extra" && continue
  step "$extra" bash "$extra"
done
for i in "${!BG[@]}"; do
  rc=0
  wait "${BG_PID[$i]}" || rc=$?
  log="target/$(basename "${BG[$i]}" .sh).log"
  end=$(date +%s)
  [ -f "$log.end" ] && read -r _ end <"$log.end"
  dt=$(( end - BG_T0[i] ))
  echo "== ${BG[$i]} (ran in the background for $dt s)"
  cat "$log"
  record "${BG[$i]} (background)" "$rc" "$dt"
done
echo "== times"
printf '  %s\n' "${TIMES[@]}"
printf '  %-44s %5d s\n' "total (wall)" $(( $(date +%s) - T0 ))
if ((${#SKIPPED[@]})); then
  echo "*** NOT EVERYTHING RAN: ${SKIPPED[*]} SKIPPED (see the *** SKIPPED lines above); every other check passed ***"
else
  echo "== all checks passed"
fi

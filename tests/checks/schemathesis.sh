#!/usr/bin/env bash
# Fuzzes the running federation's HTTP API with schemathesis (PyPI), against each
# instance's own /openapi.json, with a real token: a hub (with the BFF) and a worker
# started by `pek local` (real processes' code paths, real PostgreSQL). Fails on any 5xx
# (not_a_server_error), any answer that breaks its documented schema
# (response_schema_conformance) and any status the document does not list for the
# operation (status_code_conformance). Bounded: about 90 s of fuzzing in all, under
# 2 minutes with start-up.
#
# Knobs: PEK_FUZZ_SECONDS (per instance, default 40), PEK_FUZZ_EXAMPLES (per operation,
# default 25), PEK_FUZZ_SEED (reproduce a run).
# run.sh: in the background (its own processes on loopback; tests/run.sh runs it beside the
# tests and prints its output when it ends)
set -euo pipefail
cd "$(dirname "$0")/../.."

ST_VERSION=4.32.5
TOOLS="$PWD/target/tools"
VENV="$TOOLS/schemathesis-$ST_VERSION"
SECONDS_EACH=${PEK_FUZZ_SECONDS:-40}
EXAMPLES=${PEK_FUZZ_EXAMPLES:-25}
SEED=${PEK_FUZZ_SEED:-$RANDOM}

if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$ST_VERSION"; then
  echo "installing schemathesis $ST_VERSION into $VENV"
  rm -rf "$VENV"
  mkdir -p "$TOOLS"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi

# target/debug/pek as `cargo test --workspace` built it (one feature set for the whole test
# command; `cargo build --bin pek` would compile dozens of crates again). tests/run.sh runs
# this check after its build (see tests/build-wait.sh for the other ways).
# shellcheck source=tests/build-wait.sh
. tests/build-wait.sh
wait_for_build
work=$(mktemp -d)
chmod 700 "$work"
target/debug/pek local --listen 127.0.0.1:0 --token-ttl 900 >"$work/local.out" 2>"$work/local.err" &
pid=$!
cleanup() {
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

for _ in $(seq 1 600); do
  grep -q 'export ALICE=' "$work/local.out" && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/local.out" "$work/local.err" >&2; echo "pek local exited" >&2; exit 1; }
  sleep 0.2
done
hub=$(awk '/hub \+ BFF/ {print $4; exit}' "$work/local.out")
worker=$(awk '$1 == "worker" && $2 == "kir-dev" {print $3; exit}' "$work/local.out")
# Alice is GOD in every realm, so the fuzzer reaches the code behind the permission checks.
token=$(sed -n 's/.*export ALICE=\([^ ]*\).*/\1/p' "$work/local.out" | head -1)
# A worker accepts only tokens for its own realm: Alice's for kir-dev.
worker_token=$(sed -n 's/.*export ALICE_KIR_DEV=\([^ ]*\).*/\1/p' "$work/local.out" | head -1)
if [ -z "$hub" ] || [ -z "$worker" ] || [ -z "$token" ] || [ -z "$worker_token" ]; then
  cat "$work/local.out" >&2
  echo "could not read the hub, worker and token from pek local" >&2
  exit 1
fi

fuzz() { # fuzz <name> <base url> <realm it serves> <bearer token>
  local name=$1 url=$2 realm=$3 token=$4
  echo "== schemathesis $ST_VERSION: $name ($url, realm $realm), ${SECONDS_EACH}s, seed $SEED"
  # `{realm}` is the instance's own realm: random realm ids only ever reach the
  # "invalid / not served here" answers, not the code behind them.
  printf '[parameters]\n"path.realm" = "%s"\n' "$realm" >"$work/schemathesis-$realm.toml"
  # One worker: with several threads, hypothesis' lambda-source cache trips over a
  # CPython 3.11 ast race ("AST constructor recursion depth mismatch").
  NO_COLOR=1 "$VENV/bin/schemathesis" --config-file "$work/schemathesis-$realm.toml" \
    run "$url/openapi.json" \
    --checks not_a_server_error,response_schema_conformance,status_code_conformance \
    --header "Authorization: Bearer $token" \
    --phases examples,coverage,fuzzing \
    --max-examples "$EXAMPLES" \
    --max-time "$SECONDS_EACH" \
    --request-timeout 10 \
    --seed "$SEED" \
    --generation-database none \
    --workers 1 \
    --suppress-health-check all
}

status=0
fuzz hub "$hub" hub "$token" || status=1
fuzz "worker kir-dev" "$worker" kir-dev "$worker_token" || status=1
if [ "$status" != 0 ]; then
  echo "schemathesis found problems (seed $SEED); pek local's log:" >&2
  tail -50 "$work/local.err" >&2
fi
exit "$status"

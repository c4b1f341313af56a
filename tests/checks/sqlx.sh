#!/usr/bin/env bash
# Compile-time SQL: the offline query data in .sqlx/ must match what the queries in the
# code say against the schema the migrations build, so a renamed column fails here (and in
# the build), not in a test. Starts a throwaway PostgreSQL (the workspace's harness,
# package pek-localpg), applies the realm then hub migrations to a fresh database as the
# hub does, and runs `cargo sqlx prepare --workspace --check` against it.
#
# Regenerate .sqlx after changing a query (the one command of the dev loop):
#     tests/checks/sqlx.sh --write
#
# Installs sqlx-cli (pinned to the sqlx version in Cargo.lock) when it is missing. Cost on
# a 2-core machine: installing sqlx-cli 2-8 min once (2.5 min of CPU), the check itself
# 3-4 min (a `cargo check` of the workspace members against the live database).
set -euo pipefail
cd "$(dirname "$0")/../.."

mode=--check
case "${1:-}" in
  --write) mode= ;;
  "") ;;
  *) echo "usage: $0 [--write]" >&2; exit 2 ;;
esac

SQLX_CLI_VERSION=0.8.6
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if ! cargo sqlx --version 2>/dev/null | grep -q " $SQLX_CLI_VERSION\$"; then
  echo "== installing sqlx-cli $SQLX_CLI_VERSION"
  cargo install sqlx-cli --locked --version "$SQLX_CLI_VERSION" \
    --no-default-features --features rustls,postgres
fi

# The harness program reads the migrations at run time, so it builds without .sqlx.
cargo build --locked -q -p pek-localpg --example migrated_db
"${CARGO_TARGET_DIR:-target}/debug/examples/migrated_db" \
  --migrations migrations/realm --migrations migrations/hub \
  -- cargo sqlx prepare --workspace $mode -- --all-targets --locked

#!/usr/bin/env bash
# Compile-time SQL: the offline query data in .sqlx/ must match what the queries in the
# code say against the schema the migrations build, so a renamed column fails here (and in
# the build), not in a test. The workspace's own program (pek-localpg's example sqlx_data)
# finds every query macro's SQL in the sources, migrates a fresh throwaway PostgreSQL as the
# hub does (realm then hub migrations) and compares each query's description — sqlx's own
# `describe`, what the macros run online — with its data file; a query without a file and a
# file without a query fail too.
#
# Regenerate .sqlx after changing a query or a migration (the one command of the dev loop):
#     tests/checks/sqlx.sh --write
#
# No sqlx-cli and no second compilation: the check's program is built by `cargo test
# --workspace` (with the one feature set of the test command), so in ./tests/run.sh this is a
# no-op build and a few seconds of checking.
set -euo pipefail
cd "$(dirname "$0")/../.."

mode=
case "${1:-}" in
  --write) mode=--write ;;
  "") ;;
  *) echo "usage: $0 [--write]" >&2; exit 2 ;;
esac

if [ -n "$mode" ]; then
  # The workspace may not build offline while .sqlx lags behind the code; the program
  # itself has no query macros.
  cargo build --locked -q -p pek-localpg --example sqlx_data
else
  SQLX_OFFLINE=true cargo test --workspace --locked --no-run -q 2>&1 | grep -v '^ *Executable' || true
fi
"${CARGO_TARGET_DIR:-target}/debug/examples/sqlx_data" \
  --migrations migrations/realm --migrations migrations/hub \
  --source instance --source operator --source bench --source tests --source localpg --source crds \
  --data .sqlx $mode

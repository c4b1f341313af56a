# Sourced by the checks that run what the test command's one build made (target/debug/pek,
# pek-operator, the e2e suite): `wait_for_build` returns once those exist.
#   PEK_BUILD_DONE_FILE  the check was started while something builds (its own preparation,
#                        a cluster coming up, runs meanwhile); whoever builds writes "ok" or
#                        "failed" into this file when the build ends. tests/run.sh does not:
#                        beside a fresh build the idle clusters and the chart checks cost the
#                        build more than the overlap gained.
#   PEK_TEST_BUILD_DONE=1  built already.
#   neither              the check runs alone: build it now (a no-op when nothing changed).
wait_for_build() {
  if [ -n "${PEK_BUILD_DONE_FILE:-}" ]; then
    while [ ! -s "$PEK_BUILD_DONE_FILE" ]; do sleep 1; done
    if [ "$(cat "$PEK_BUILD_DONE_FILE")" != ok ]; then
      echo "the build failed: nothing to check" >&2
      exit 1
    fi
  elif [ "${PEK_TEST_BUILD_DONE:-}" != 1 ]; then
    SQLX_OFFLINE=true cargo test --workspace --locked --no-run -q 2>&1 | grep -v '^ *Executable' || true
  fi
}

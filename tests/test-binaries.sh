#!/usr/bin/env bash
# Runs the test executables that `cargo test --workspace --no-run` built (listed in
# target/test-executables.txt by tests/run.sh: "<target name> <package dir> <executable>"),
# several at a time, then the doctests. What `cargo test --workspace` does, but cargo runs the
# binaries one after the other, and many of ours spend their time waiting (for a browser, a
# process's start, a deadline), which leaves the cores idle.
#
# Each binary runs as cargo would run it: from its package's directory, with
# CARGO_MANIFEST_DIR set. Its output goes to target/test-logs/, and is printed in full when
# it fails. The slowest binaries start first: their times from the last run are kept in
# target/test-times.txt; a fresh clone uses tests/test-times.txt (a recorded run's, by
# target name; refresh it with `cp target/test-times.txt tests/` when the order drifts). Knobs: PEK_TEST_JOBS (default 3); arguments are passed to every
# binary (e.g. `--nocapture`).
set -euo pipefail
cd "$(dirname "$0")/.."

list=target/test-executables.txt
[ -s "$list" ] || { echo "no $list: run tests/run.sh (or its build step) first" >&2; exit 2; }
jobs=${PEK_TEST_JOBS:-3}
logs=target/test-logs
times=target/test-times.txt
rm -rf "$logs"
mkdir -p "$logs"

# Longest first: last run's seconds, else the process-level suites (tests/) before the rest.
order=$(python3 - "$list" "$times" tests/test-times.txt <<'EOF'
import os, sys
lst, times, recorded = sys.argv[1], sys.argv[2], sys.argv[3]
known = {}
for path in (times, recorded):
    if os.path.exists(path):
        for line in open(path):
            parts = line.split()
            if len(parts) == 2:
                known.setdefault(parts[0], float(parts[1]))
rows = [l.split() for l in open(lst) if len(l.split()) == 3]
def key(r):
    if r[0] in known:
        return (0, -known[r[0]])
    return (1, 0 if r[1].endswith("/tests") else 1)
for r in sorted(rows, key=key):
    print(*r)
EOF
)

failed=()
declare -A started=() name_of=()
run_one() { # run_one <name> <dir> <exe> <log>
  local name=$1 dir=$2 exe=$3 log=$4 t0 rc=0
  t0=$(date +%s.%N)
  (cd "$dir" && CARGO_MANIFEST_DIR="$dir" "$exe" "${@:5}") >"$log" 2>&1 || rc=$?
  # CPU seconds of the binary and what it waited for (the instances it started, the
  # browser): the cores are shared, so this, not the wall time, is what a binary costs
  # the whole run. `times`' second line is this subshell's children, user then system.
  # (Into a file: in a pipe or `$(…)`, `times` would run in a subshell with no children.)
  local cpu
  times >"$log.times"
  cpu=$(awk 'NR == 2 { n = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 60 + a[2] } printf "%.0f", n }' "$log.times")
  printf '%s %.1f %s %s\n' "$name" "$(echo "$(date +%s.%N) - $t0" | bc)" "$rc" "${cpu:-?}" >"$log.end"
  return "$rc"
}
report() { # report <pid> <status>
  local pid=$1 rc=$2 exe log secs cpu
  exe=${name_of[$pid]}
  log="$logs/$(basename "$exe").log"
  secs=$(awk '{print $2}' "$log.end" 2>/dev/null || echo '?')
  cpu=$(awk '{print $4}' "$log.end" 2>/dev/null || echo '?')
  if [ "$rc" = 0 ]; then
    printf '  ok      %-28s %6s s  cpu %4s s  %s\n' "${started[$pid]}" "$secs" "$cpu" \
      "$(grep -E '^test result:' "$log" | tail -1 | sed 's/; 0 ignored; 0 measured//')"
  else
    printf '  FAILED  %-28s %6s s  (exit %s)\n' "${started[$pid]}" "$secs" "$rc"
    echo "---- output of ${started[$pid]} ($exe) ----"
    cat "$log"
    echo "---- end of ${started[$pid]} ----"
    failed+=("${started[$pid]}")
  fi
  unset "started[$pid]" "name_of[$pid]"
}
wait_one() {
  local rc=0 pid
  wait -n -p pid "${!started[@]}" || rc=$?
  report "$pid" "$rc"
}
while read -r name dir exe; do
  while [ "${#started[@]}" -ge "$jobs" ]; do wait_one; done
  run_one "$name" "$dir" "$exe" "$logs/$(basename "$exe").log" "$@" &
  started[$!]=$name
  name_of[$!]=$exe
done <<<"$order"
while [ "${#started[@]}" -gt 0 ]; do wait_one; done
cat "$logs"/*.end 2>/dev/null | awk '{print $1, $2}' >"$times"

echo "== doctests"
cargo test --workspace --locked --doc -q

if ((${#failed[@]})); then
  echo "== FAILED: ${failed[*]}"
  exit 1
fi

#!/usr/bin/env bash
# Verification benchmark: 4 sysbench tables x 250k rows copied from a private
# source to a private target with sluice, then 20 differences planted on the
# target (changed, missing and extra rows), then compared by
#   1. sluice verify (release build),
#   2. pt-table-sync --print (Percona Toolkit, Debian package percona-toolkit),
# in one run, on the same servers, three interleaved rounds (median, with
# min and max, and CPU-seconds of the tool and both servers). Both must find
# the 20 differences. Prints wall time, rows/s and peak RSS of both; the last
# line is `ratio: X`, sluice's throughput divided by pt-table-sync's (higher
# is better).
#
# Env: TABLES (4), TABLE_SIZE (250000), SLUICE_BIN (skip the release build).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/sandbox.sh
bench_begin

bench_tools sysbench=sysbench pt-table-sync=percona-toolkit /usr/bin/time=time
bench_sluice

sandbox_start source
sandbox_start target
OUT=$SANDBOX_ROOT/out
mkdir -p "$OUT"
bench_sysbench_source

bench_copy_pipeline bench-verify >"$OUT/bench.yaml"
echo "== copying with sluice run"
"$SLUICE_BIN" run --progress off "$OUT/bench.yaml" >/dev/null

echo "== planting 20 differences on the target"
for t in $(seq 1 "$TABLES"); do
  sandbox_sql target "SET sql_log_bin = 0;
    UPDATE sbtest.sbtest$t SET c = CONCAT(LEFT(c, 119), 'x') WHERE id IN (7, $((TABLE_SIZE / 2)));
    UPDATE sbtest.sbtest$t SET k = k + 1 WHERE id = $((TABLE_SIZE - 3));
    DELETE FROM sbtest.sbtest$t WHERE id = $((TABLE_SIZE / 3));
    INSERT INTO sbtest.sbtest$t (id, k, c, pad) VALUES ($((TABLE_SIZE + 10)), 1, 'extra', 'extra');"
done
PLANTED=$((TABLES * 5))

for round in 1 2 3; do
  echo "== round $round"
  echo "== sluice verify"
  set +e
  timed sluice "$SLUICE_BIN" verify --report "$OUT/report.json" "$OUT/bench.yaml" >"$OUT/sluice.out"
  code=$?
  set -e
  found=$(python3 -c "import json; print(json.load(open('$OUT/report.json'))['differences'])")
  [ "$code" = 3 ] && [ "$found" = "$PLANTED" ] || { cat "$OUT/sluice.out"; echo "error: sluice verify found $found differences (exit $code), $PLANTED planted" >&2; exit 1; }

  echo "== pt-table-sync --print"
  # Exit status 2: differences found.
  set +e
  timed pt pt-table-sync --print --databases sbtest \
    "h=127.0.0.1,P=$SOURCE_PORT,u=root" "h=127.0.0.1,P=$TARGET_PORT,u=root" >"$OUT/pt.out"
  code=$?
  set -e
  [ "$code" = 2 ] || { cat "$OUT/pt.out"; echo "error: pt-table-sync exited $code" >&2; exit 1; }
  found=$(grep -c -E '^(REPLACE|DELETE|INSERT|UPDATE)' "$OUT/pt.out" || true)
  [ "$found" = "$PLANTED" ] || { head -30 "$OUT/pt.out"; echo "error: pt-table-sync printed $found statements, $PLANTED planted" >&2; exit 1; }
done

python3 - "$ROWS" "$sluice_WALL" "$sluice_CPU" "$sluice_KB" "$pt_WALL" "$pt_CPU" "$pt_KB" <<'PY'
import statistics, sys
rows = int(sys.argv[1])
def tool(wall, cpu, kb):
    w = [float(x) for x in wall.split()]
    c = [float(x) for x in cpu.split()]
    return statistics.median(w), min(w), max(w), statistics.median(c), int(kb)
s = tool(*sys.argv[2:5])
p = tool(*sys.argv[5:8])
for name, (med, lo, hi, cpu, kb) in (("sluice verify", s), ("pt-table-sync", p)):
    print(f"{name}:  median {med:5.2f} s (min {lo:.2f}, max {hi:.2f})  {rows / med:10.0f} rows/s  {cpu:5.2f} CPU-s (tool + servers)  peak RSS {kb // 1024} MB")
print(f"ratio: {(rows / s[0]) / (rows / p[0]):.2f}")
PY

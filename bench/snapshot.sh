#!/usr/bin/env bash
# Snapshot benchmark: 4 sysbench tables x 250k rows, copied from a private
# source to a private target by
#   1. sluice run (release build),
#   2. mydumper + myloader (2 threads each, one after the other),
#   3. mysqldump | mysql,
# in one run, on the same servers. Prints wall time, rows/s and peak RSS of
# each, and the ratios. The last line is `ratio: X`, where X is sluice's
# throughput divided by mydumper+myloader's (higher is better).
#
# Env: TABLES (4), TABLE_SIZE (250000), SLUICE_BIN (skip the release build).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/sandbox.sh
bench_begin

bench_tools sysbench=sysbench mydumper=mydumper /usr/bin/time=time mysqldump=mariadb-client
bench_sluice

sandbox_start source
sandbox_start target
OUT=$SANDBOX_ROOT/out
mkdir -p "$OUT"

bench_sysbench_source

checksums() { # server db
  local t out=""
  for t in $(seq 1 "$TABLES"); do
    out+="$(sandbox_sql "$1" "CHECKSUM TABLE $2.sbtest$t" -N | awk '{print $2}') "
  done
  echo "$out"
}
SOURCE_SUM=$(checksums source sbtest)
reset_target() { sandbox_sql target "DROP DATABASE IF EXISTS sbtest"; }

bench_copy_pipeline bench-snapshot >"$OUT/bench.yaml"

# Two rounds, tools alternating, best of each: the first round also absorbs
# the source's background work left over from sysbench prepare.
for round in 1 2; do
echo "== round $round"
echo "== sluice"
reset_target
timed sluice "$SLUICE_BIN" run --progress off "$OUT/bench.yaml" >/dev/null
[ "$(checksums target sbtest)" = "$SOURCE_SUM" ] || { echo "error: sluice copy differs from the source" >&2; exit 1; }

echo "== mydumper + myloader (2 threads each)"
reset_target
rm -rf "$OUT/dump"
timed mydumper mydumper -h 127.0.0.1 -P "$SOURCE_PORT" -u root -B sbtest -t 2 -r 100000 -o "$OUT/dump"
timed myloader myloader -h 127.0.0.1 -P "$TARGET_PORT" -u root -d "$OUT/dump" -t 2 -B sbtest
[ "$(checksums target sbtest)" = "$SOURCE_SUM" ] || echo "warning: mydumper+myloader copy differs from the source" >&2

echo "== mysqldump | mysql"
reset_target
sandbox_sql target "CREATE DATABASE sbtest"
timed dump bash -c "mysqldump --no-defaults -h127.0.0.1 -P$SOURCE_PORT -uroot --single-transaction --quick sbtest | mariadb --no-defaults -h127.0.0.1 -P$TARGET_PORT -uroot sbtest"
[ "$(checksums target sbtest)" = "$SOURCE_SUM" ] || echo "warning: mysqldump copy differs from the source (FLOAT precision, as expected)" >&2

done

python3 - "$ROWS" "$sluice_S" "$sluice_KB" "$mydumper_S" "$mydumper_KB" "$myloader_S" "$myloader_KB" "$dump_S" "$dump_KB" <<'PY'
import sys
rows = int(sys.argv[1])
s_s, s_kb, md_s, md_kb, ml_s, ml_kb, d_s, d_kb = map(float, sys.argv[2:])
mm_s, mm_kb = md_s + ml_s, max(md_kb, ml_kb)
def line(name, secs, kb):
    print(f"{name:<22} {secs:8.2f} s {rows / secs:12.0f} rows/s  peak RSS {kb / 1024:7.1f} MB")
print(f"rows: {rows}")
line("sluice", s_s, s_kb)
line("mydumper+myloader", mm_s, mm_kb)
print(f"  (mydumper {md_s:.2f} s, myloader {ml_s:.2f} s)")
line("mysqldump | mysql", d_s, d_kb)
print(f"ratio vs mysqldump|mysql: {d_s / s_s:.2f}")
print(f"peak RSS sluice: {s_kb / 1024:.1f} MB")
print(f"ratio: {mm_s / s_s:.2f}")
PY

#!/usr/bin/env bash
# Archive benchmark: 4 sysbench tables x 250k rows exported from a private
# source to Parquet files on a local folder by
#   1. sluice run (release build, `sinks: - parquet`, zstd),
#   2. chDB (embedded ClickHouse, PyPI package `chdb`): its mysql() table
#      function into file(..., Parquet), one table after another, defaults,
# in one run, best of two rounds each. Both outputs are read back with
# pyarrow and must hold every row. Prints rows/s, output size and peak RSS
# of both; the last line is `ratio: X`, sluice's throughput divided by
# chDB's (higher is better).
#
# Env: TABLES (4), TABLE_SIZE (250000), SLUICE_BIN (skip the release build).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/sandbox.sh
bench_begin

bench_tools sysbench=sysbench /usr/bin/time=time
python3 -c "import chdb, pyarrow" 2>/dev/null || { echo "== pip install chdb pyarrow"; python3 -m pip install -q chdb pyarrow; }
bench_sluice

sandbox_start source
OUT=$SANDBOX_ROOT/out
mkdir -p "$OUT"

bench_sysbench_source

cat >"$OUT/bench.yaml" <<YAML
name: bench-archive
source:
  mysql:
    url: mysql://root@127.0.0.1:$SOURCE_PORT
    mode: snapshot
    include: ["sbtest.*"]
sinks:
  - parquet:
      url: file://$OUT/sluice
settings:
  parallelism: ${PARALLELISM:-4}
YAML

cat >"$OUT/chdb_export.py" <<PY
import chdb
for t in range(1, $TABLES + 1):
    chdb.query(
        f"INSERT INTO FUNCTION file('$OUT/chdb/sbtest{t}.parquet', Parquet) "
        f"SELECT * FROM mysql('127.0.0.1:$SOURCE_PORT', 'sbtest', 'sbtest{t}', 'root', '')"
    )
PY

# rows DIR: the rows of every Parquet file under DIR, read by pyarrow.
rows() {
  python3 -c "
import pathlib, sys, pyarrow.parquet as pq
print(sum(pq.ParquetFile(p).metadata.num_rows for p in pathlib.Path(sys.argv[1]).rglob('*.parquet')))" "$1"
}
size() { find "$1" -name '*.parquet' -printf '%s\n' | awk '{s += $1} END {print s}'; }

for round in 1 2; do
  echo "== round $round"
  echo "== sluice"
  rm -rf "$OUT/sluice"
  timed sluice "$SLUICE_BIN" run --progress off "$OUT/bench.yaml" >/dev/null
  [ "$(rows "$OUT/sluice")" = "$ROWS" ] || { echo "error: sluice's files do not hold $ROWS rows" >&2; exit 1; }
  echo "== chDB"
  rm -rf "$OUT/chdb"; mkdir -p "$OUT/chdb"
  timed chdb python3 "$OUT/chdb_export.py"
  [ "$(rows "$OUT/chdb")" = "$ROWS" ] || { echo "error: chDB's files do not hold $ROWS rows" >&2; exit 1; }
done

python3 - "$ROWS" "$sluice_S" "$sluice_KB" "$(size "$OUT/sluice")" "$chdb_S" "$chdb_KB" "$(size "$OUT/chdb")" <<'PY'
import sys
rows = int(sys.argv[1])
s_s, s_kb, s_size, c_s, c_kb, c_size = map(float, sys.argv[2:])
def line(name, secs, kb, size):
    print(f"{name:<8} {secs:8.2f} s {rows / secs:10.0f} rows/s  files {size / 2**20:7.1f} MB  peak RSS {kb / 1024:7.1f} MB")
print(f"rows: {rows}")
line("sluice", s_s, s_kb, s_size)
line("chDB", c_s, c_kb, c_size)
print(f"file size sluice/chDB: {s_size / c_size:.2f}")
print(f"peak RSS sluice: {s_kb / 1024:.1f} MB")
print(f"ratio: {c_s / s_s:.2f}")
PY

#!/usr/bin/env bash
# Transform benchmark: the snapshot benchmark's data (4 sysbench tables x
# 250k rows) copied three times in one run: with no transform, through the
# no-op plugin, and through `mask` on two columns. Prints rows/s of each;
# the last line is `ratio: X` = no-op throughput / no-transform throughput.
#
# Env: TABLES (4), TABLE_SIZE (250000), SLUICE_BIN (skips the release build).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/sandbox.sh
bench_begin
bench_tools sysbench=sysbench /usr/bin/time=time
bench_sluice
echo "== building the plugins"
"$SLUICE_BIN" plugin build plugins/noop >/dev/null
"$SLUICE_BIN" plugin build plugins/mask >/dev/null

sandbox_start source
sandbox_start target
OUT=$SANDBOX_ROOT/out
mkdir -p "$OUT"
bench_sysbench_source

run() { # name transforms-yaml -> seconds
  cat >"$OUT/$1.yaml" <<YAML
name: $1
source:
  mysql:
    url: mysql://root@127.0.0.1:$SOURCE_PORT
    mode: snapshot
    include: ["sbtest.*"]
transforms:
$2
sinks:
  - mysql:
      url: mysql://root@127.0.0.1:$TARGET_PORT
      write_binlog: false
      rename:
        "sbtest.*": "out_$1.*"
YAML
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -f '%M' -o "$OUT/$1.rss" "$SLUICE_BIN" run --progress off "$OUT/$1.yaml" >/dev/null 2>"$OUT/$1.log" || { tail "$OUT/$1.log" >&2; exit 1; }
  cat "$OUT/$1.rss" >>"$OUT/rss"
  t1=$(date +%s.%N)
  python3 -c "print($t1 - $t0)"
}
best() { # name transforms -> best of two rounds
  local a b
  a=$(run "$1" "$2"); sandbox_sql target "DROP DATABASE out_$1"
  b=$(run "$1" "$2"); sandbox_sql target "DROP DATABASE out_$1"
  python3 -c "print(min($a, $b))"
}
echo "== copying $ROWS rows three ways (best of two rounds each)"
none=$(best none "  []")
noop=$(best noop "  - plugin: plugins/noop")
mask=$(best mask "  - plugin: plugins/mask
    config:
      salt: bench
      columns: { c: hash, pad: redact }")

python3 - "$ROWS" "$none" "$noop" "$mask" "$(sort -n "$OUT/rss" | tail -1)" <<'PY'
import sys
rows = int(sys.argv[1]); none, noop, mask = map(float, sys.argv[2:5]); rss_kb = int(sys.argv[5])
for name, s in (("no transform", none), ("no-op plugin", noop), ("mask on two columns", mask)):
    print(f"{name:<22} {s:7.2f} s {rows / s:10.0f} rows/s")
print(f"mask cost: {100 * (1 - none / mask):.1f}% (target under 25%)")
print(f"peak RSS (any run): {rss_kb / 1024:.1f} MB")
print(f"ratio: {none / noop:.2f}")
PY

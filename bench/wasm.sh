#!/usr/bin/env bash
# Transform benchmark: the snapshot benchmark's data (4 sysbench tables x
# 250k rows) copied with no transform, through the no-op plugin, and
# through `mask` on two columns, in ROUNDS interleaved rounds (the order
# rotates each round: on a shared machine, phases run one after another
# differ by noise alone). Prints the median wall time (min-max), rows/s and
# sluice's CPU-seconds (user+sys) of each; the last line is `ratio: X` =
# no-op throughput / no-transform throughput (medians).
#
# Env: TABLES (4), TABLE_SIZE (250000), ROUNDS (5), SLUICE_BIN (skips the
# release build).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/sandbox.sh
bench_begin
bench_tools sysbench=sysbench /usr/bin/time=time
bench_sluice
echo "== building the plugins"
# The pipelines name the built components: a plugin folder would be
# checked for changes (a cargo run) at every start, a fixed cost that is
# not the plugin's per-batch cost this measures.
noop_wasm=$("$SLUICE_BIN" plugin build plugins/noop 2>/dev/null)
mask_wasm=$("$SLUICE_BIN" plugin build plugins/mask 2>/dev/null)

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
  /usr/bin/time -f '%M %U %S' -o "$OUT/$1.time" "$SLUICE_BIN" run --progress off "$OUT/$1.yaml" >/dev/null 2>"$OUT/$1.log" || { tail "$OUT/$1.log" >&2; exit 1; }
  t1=$(date +%s.%N)
  sandbox_sql target "DROP DATABASE out_$1"
  read -r rss user sys <"$OUT/$1.time"
  echo "$1 $(python3 -c "print($t1 - $t0, $user + $sys)") $rss" >>"$OUT/results"
}
ROUNDS=${ROUNDS:-5}
mask_yaml="  - plugin: $mask_wasm
    config:
      salt: bench
      columns: { c: hash, pad: redact }"
contenders=(none noop mask)
echo "== copying $ROWS rows three ways, $ROUNDS interleaved rounds"
for round in $(seq 1 "$ROUNDS"); do
  for i in 0 1 2; do
    c=${contenders[$(( (i + round) % 3 ))]}
    case $c in
      none) run none "  []" ;;
      noop) run noop "  - plugin: $noop_wasm" ;;
      mask) run mask "$mask_yaml" ;;
    esac
  done
done

python3 - "$ROWS" "$OUT/results" <<'PY'
import statistics, sys
rows = int(sys.argv[1])
by = {}
for line in open(sys.argv[2]):
    c, wall, cpu, rss = line.split()
    by.setdefault(c, []).append((float(wall), float(cpu), int(rss)))
med = {}
for c, name in (("none", "no transform"), ("noop", "no-op plugin"), ("mask", "mask on two columns")):
    walls = [r[0] for r in by[c]]
    med[c] = statistics.median(walls)
    cpu = statistics.median(r[1] for r in by[c])
    print(f"{name:<22} {med[c]:7.2f} s ({min(walls):.2f} - {max(walls):.2f}) {rows / med[c]:10.0f} rows/s  sluice CPU {cpu:6.2f} s")
cpu = {c: statistics.median(r[1] for r in by[c]) for c in by}
print(f"no-op plugin CPU cost: {1e6 * (cpu['noop'] - cpu['none']) / rows:.2f} us per row")
print(f"mask cost: {100 * (1 - med['none'] / med['mask']):.1f}% (target under 25%)")
print(f"peak RSS (any run): {max(r[2] for v in by.values() for r in v) / 1024:.1f} MB")
print(f"ratio: {med['none'] / med['noop']:.2f}")
PY

#!/usr/bin/env bash
# MySQL → PostgreSQL benchmark: 4 sysbench tables x 250k rows from a
# private MariaDB into a private PostgreSQL, by
#   1. sluice run (release build; binary COPY over 4 connections),
#   2. pgloader (Debian's package: the tool a user would pick, a one-time copy),
# in ROUNDS interleaved rounds on the same servers. Each copy is checked
# (row count and sum of `k` per table against the source). Prints each
# tool's median wall time (min-max), rows/s and CPU-seconds; then sluice's
# catch-up throughput for a sysbench oltp_write_only backlog of DURATION
# seconds under each `apply.consistency`, ROUNDS interleaved rounds each
# on the same backlog (pgloader follows no changes).
#
# The last line is `ratio: X`: sluice's median throughput divided by
# pgloader's (higher is better).
#
# Env: TABLES (4), TABLE_SIZE (250000), ROUNDS (3), DURATION (20),
# SLUICE_BIN (skips the release build).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-20}
. scripts/sandbox.sh
bench_begin
bench_tools sysbench=sysbench pgloader=pgloader /usr/bin/time=time psql=postgresql-client
bench_sluice

sandbox_start source
OUT=$SANDBOX_ROOT/out
mkdir -p "$OUT"
bench_sysbench_source

# A private PostgreSQL, run as the postgres user (it refuses root).
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
PG_DIR=$SANDBOX_ROOT/pg
PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$PG_DIR"
chmod 755 "$SANDBOX_ROOT" # the postgres user reaches its datadir through it
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres:postgres "$PG_DIR"
as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
  -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_wal_size=4GB -c shared_buffers=512MB" start >/dev/null
trap 'as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true; sandbox_stop_all' EXIT
pg() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -A -t -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "${PGDB:-bench}" -v ON_ERROR_STOP=1 -c "$1"; }
PGDB=postgres pg "CREATE DATABASE bench"

# Row count and sum of k per table: the source's, and a target's.
source_sums() {
  local t
  for t in $(seq 1 "$TABLES"); do sandbox_sql source "SELECT COUNT(*), SUM(k) FROM sbtest.sbtest$t" -N; done | tr '\t' ' '
}
target_sums() {
  local t
  for t in $(seq 1 "$TABLES"); do pg "SELECT count(*), sum(k) FROM sbtest.sbtest$t"; done | tr '|' ' '
}
SOURCE_SUMS=$(source_sums)
check() { [ "$(target_sums)" = "$SOURCE_SUMS" ] || { echo "error: the $1 copy differs from the source" >&2; exit 1; }; }
reset() { pg "DROP SCHEMA IF EXISTS sbtest CASCADE; DROP SCHEMA IF EXISTS sluice CASCADE"; }

pipeline() { # mode
  cat <<YAML
name: bench-pg
source:
  mysql:
    url: mysql://root@127.0.0.1:$SOURCE_PORT
    mode: $1
    include: ["sbtest.*"]
sinks:
  - postgres:
      url: postgres://postgres@127.0.0.1:$PG_PORT/bench
settings:
  parallelism: 4
YAML
}
pipeline snapshot >"$OUT/snapshot.yaml"

# trial NAME COMMAND...: wall seconds and the tool's CPU-seconds, appended
# to $OUT/results.
# pgloader's SBCL runtime sometimes dies mid-run ("GC invariant lost",
# "Heap exhausted");
# such a run is not timed, and the round runs it again (up to 3 times).
trial() {
  local name=$1 attempt; shift
  for attempt in 1 2 3; do
    reset
    if /usr/bin/time -f '%e %U %S' -o "$OUT/$name.time" "$@" </dev/null >"$OUT/$name.log" 2>&1; then
      break
    fi
    echo "   $name failed (attempt $attempt): $(grep -m1 -i 'error' "$OUT/$name.log" || tail -n 1 "$OUT/$name.log")" >&2
    [ "$attempt" = 3 ] && { tail -20 "$OUT/$name.log" >&2; exit 1; }
  done
  check "$name"
  read -r wall user sys <"$OUT/$name.time"
  echo "$name $wall $(python3 -c "print(round($user + $sys, 2))")" | tee -a "$OUT/results"
}
for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round of $ROUNDS (tool wall_s cpu_s)"
  first=sluice
  [ $((round % 2)) = 0 ] && first=pgloader
  for tool in $first $([ $first = sluice ] && echo pgloader || echo sluice); do
    case $tool in
      sluice) trial sluice "$SLUICE_BIN" run --progress off "$OUT/snapshot.yaml" ;;
      # Smaller prefetch batches than the default 100,000 rows: with the
      # default, the packaged pgloader (a 1 GB Lisp heap) runs out of heap
      # on these tables in some runs.
      pgloader) trial pgloader pgloader --no-ssl-cert-verification --with "prefetch rows = 25000" \
        "mysql://root@127.0.0.1:$SOURCE_PORT/sbtest" "postgresql://postgres@127.0.0.1:$PG_PORT/bench" ;;
    esac
  done
done

# Change apply: one PostgreSQL database per round and apply mode, each
# loaded and checkpointed before the backlog exists, so every catch-up
# applies the same backlog; the catch-ups interleave the modes.
MODES="transactional eventual"
cdc_pipeline() { # name database consistency
  cat <<YAML
name: $1
source:
  mysql:
    url: mysql://root@127.0.0.1:$SOURCE_PORT
    mode: snapshot+cdc
    include: ["sbtest.*"]
sinks:
  - postgres:
      url: postgres://postgres@127.0.0.1:$PG_PORT/$2
      apply: {consistency: $3}
settings:
  parallelism: 4
YAML
}
echo "== loading $((ROUNDS * 2)) databases for the change apply rounds"
reset
for round in $(seq 1 "$ROUNDS"); do
  for mode in $MODES; do
    db=cdc_${mode}_$round
    PGDB=postgres pg "DROP DATABASE IF EXISTS $db"
    PGDB=postgres pg "CREATE DATABASE $db"
    cdc_pipeline "bench-$db" "$db" "$mode" >"$OUT/$db.yaml"
    "$SLUICE_BIN" run --progress off --until-caught-up "$OUT/$db.yaml" >/dev/null 2>"$OUT/$db-seed.log"
  done
done
echo "== a sysbench oltp_write_only backlog of $DURATION s"
bench_write_only 2 --time="$DURATION" run >"$OUT/load.txt"
txns=$(sed -n 's/^ *transactions: *\([0-9]*\).*/\1/p' "$OUT/load.txt")
changes=$((txns * 4))
SOURCE_SUMS=$(source_sums)
: >"$OUT/cdc-results"
for round in $(seq 1 "$ROUNDS"); do
  echo "== catch-up round $round of $ROUNDS (mode wall_s cpu_s)"
  order=$MODES
  [ $((round % 2)) = 0 ] && order=$(echo "$MODES" | tr ' ' '\n' | tac | tr '\n' ' ')
  for mode in $order; do
    db=cdc_${mode}_$round
    /usr/bin/time -f '%e %U %S' -o "$OUT/$db.time" \
      "$SLUICE_BIN" run --progress off --until-caught-up "$OUT/$db.yaml" >/dev/null 2>"$OUT/$db.log"
    PGDB=$db check "$mode change-applied"
    read -r wall user sys <"$OUT/$db.time"
    echo "$mode $wall $(python3 -c "print(round($user + $sys, 2))")" | tee -a "$OUT/cdc-results"
  done
done

python3 - "$ROWS" "$OUT/results" "$changes" "$OUT/cdc-results" <<'PY'
import statistics, sys
rows = int(sys.argv[1])
runs = {}
for line in open(sys.argv[2]):
    name, wall, cpu = line.split()
    runs.setdefault(name, []).append((float(wall), float(cpu)))
print(f"rows: {rows}")
med = {}
for name in ("sluice", "pgloader"):
    walls = [w for w, _ in runs[name]]
    cpus = [c for _, c in runs[name]]
    med[name] = statistics.median(walls)
    print(f"{name:<10} {med[name]:8.2f} s ({min(walls):.2f} - {max(walls):.2f}) "
          f"{rows / med[name]:10.0f} rows/s  CPU {statistics.median(cpus):6.2f} s")
changes = int(sys.argv[3])
cdc = {}
for line in open(sys.argv[4]):
    mode, wall, cpu = line.split()
    cdc.setdefault(mode, []).append((float(wall), float(cpu)))
for mode, got in cdc.items():
    walls = sorted(w for w, _ in got)
    cpu = statistics.median(c for _, c in got)
    wall = statistics.median(walls)
    print(f"sluice CDC catch-up into PostgreSQL, {mode}: {changes} row changes in {wall:.2f} s "
          f"({walls[0]:.2f} - {walls[-1]:.2f}, including start-up), {changes / wall:.0f} changes/s, "
          f"CPU {cpu:.2f} s ({cpu / changes * 1e6:.1f} us per change)")
print(f"ratio: {med['pgloader'] / med['sluice']:.2f}")
PY

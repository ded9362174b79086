#!/usr/bin/env bash
# CDC catch-up benchmark. One source, sysbench oltp_write_only on 4 tables for
# DURATION seconds while every follower is stopped:
#   - a native MariaDB replica with its SQL thread stopped (IO thread running),
#   - sluice with apply.consistency: eventual (stopped),
#   - sluice with apply.consistency: transactional (stopped).
# Then each catches up in turn and is timed until it has applied the source's
# final binlog position. Prints row changes/s of each and the ratios; then the
# p50/p99 lag of sluice following a live DURATION-second run (measured
# independently: a heartbeat row updated every 100 ms on the source, read on
# the target). The last line is `ratio: X` = sluice (eventual) catch-up
# throughput / native replication's.
#
# Env: TABLES (4), TABLE_SIZE (100000), DURATION (30), SLUICE_BIN (skips the release build).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-30}

. scripts/sandbox.sh
bench_begin 100000
bench_tools sysbench=sysbench /usr/bin/time=time
bench_sluice

sandbox_start source
sandbox_start replica --server-id=77 --skip-slave-start
sandbox_start eventual
sandbox_start transactional
OUT=$SANDBOX_ROOT/out
mkdir -p "$OUT"
sql() { sandbox_sql "$@"; }

echo "== sysbench prepare: $TABLES tables x $TABLE_SIZE rows"
sql source "CREATE DATABASE sbtest; CREATE TABLE sbtest.hb (id INT PRIMARY KEY, ts DATETIME(6)); INSERT INTO sbtest.hb VALUES (1, NOW(6))"
sysbench oltp_write_only --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$SOURCE_PORT" \
  --mysql-user=root --mysql-db=sbtest --tables="$TABLES" --table-size="$TABLE_SIZE" --threads=2 prepare >/dev/null

pipeline() { # name port consistency mode
  cat >"$OUT/$1.yaml" <<YAML
name: $1
source:
  mysql:
    url: mysql://root@127.0.0.1:$SOURCE_PORT
    mode: $4
    include: ["sbtest.*"]
    cdc:
      heartbeat_ms: 200
sinks:
  - mysql:
      url: mysql://root@127.0.0.1:$2
      apply:
        consistency: $3
YAML
}
pipeline seed-replica "$REPLICA_PORT" eventual snapshot
pipeline eventual "$EVENTUAL_PORT" eventual snapshot+cdc
pipeline transactional "$TRANSACTIONAL_PORT" transactional snapshot+cdc

echo "== initial copies (sluice snapshot), native replica attached at the snapshot position"
pos=$("$SLUICE_BIN" run --progress off "$OUT/seed-replica.yaml" 2>/dev/null | sed -n 's/^snapshot position: \([^ ]*\):\([0-9]*\).*/\1 \2/p')
read -r file offset <<<"$pos"
sql replica "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$SOURCE_PORT, MASTER_USER='root', MASTER_USE_GTID=no, MASTER_LOG_FILE='$file', MASTER_LOG_POS=$offset; START SLAVE IO_THREAD"
for p in eventual transactional; do
  "$SLUICE_BIN" run --progress off --until-caught-up "$OUT/$p.yaml" >/dev/null 2>"$OUT/$p.seed.log"
done

echo "== sysbench oltp_write_only for $DURATION s, every follower stopped"
sysbench oltp_write_only --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$SOURCE_PORT" \
  --mysql-user=root --mysql-db=sbtest --tables="$TABLES" --table-size="$TABLE_SIZE" --threads=2 \
  --time="$DURATION" run >"$OUT/load.txt"
txns=$(sed -n 's/^ *transactions: *\([0-9]*\).*/\1/p' "$OUT/load.txt")
changes=$((txns * 4)) # oltp_write_only: 2 updates, 1 delete, 1 insert per transaction
read -r final_file final_offset <<<"$(sql source "SHOW MASTER STATUS" -N | awk '{print $1, $2}')"
echo "   $txns transactions, $changes row changes; source at $final_file:$final_offset"

now() { date +%s.%N; }
echo "== native replication catches up (single SQL thread)"
t0=$(now)
sql replica "START SLAVE SQL_THREAD; SELECT MASTER_POS_WAIT('$final_file', $final_offset, 600)" -N >/dev/null
native_s=$(python3 -c "print($(now) - $t0)")

catch_up() { # name port -> seconds until the sink's checkpoint reaches the final position
  local t0 pid
  t0=$(now)
  "$SLUICE_BIN" run --progress off "$OUT/$1.yaml" >/dev/null 2>"$OUT/$1.catchup.log" &
  pid=$!
  while :; do
    local behind
    behind=$(mariadb --no-defaults -uroot -h127.0.0.1 -P"$2" -N -e \
      "SELECT COUNT(*) FROM sluice.checkpoints WHERE pipeline='$1' AND (binlog_file < '$final_file' OR (binlog_file = '$final_file' AND binlog_offset < $final_offset))" 2>/dev/null || echo 1)
    [ "$behind" = 0 ] && break
    kill -0 $pid 2>/dev/null || { echo "error: sluice exited:" >&2; tail "$OUT/$1.catchup.log" >&2; exit 1; }
    sleep 0.05
  done
  python3 -c "print($(now) - $t0)"
  kill -TERM $pid; wait $pid || true
}
echo "== sluice catches up (eventual)"
eventual_s=$(catch_up eventual "$EVENTUAL_PORT")
echo "== sluice catches up (transactional)"
transactional_s=$(catch_up transactional "$TRANSACTIONAL_PORT")

for t in $(seq 1 "$TABLES"); do
  s=$(sql source "CHECKSUM TABLE sbtest.sbtest$t" -N | awk '{print $2}')
  for f in replica eventual transactional; do
    d=$(sql "$f" "CHECKSUM TABLE sbtest.sbtest$t" -N | awk '{print $2}')
    [ "$s" = "$d" ] || { echo "error: $f differs from the source on sbtest$t" >&2; exit 1; }
  done
done

echo "== lag while sluice follows a live $DURATION s run"
"$SLUICE_BIN" run --progress off "$OUT/eventual.yaml" >/dev/null 2>"$OUT/live.log" &
live_pid=$!
sysbench oltp_write_only --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$SOURCE_PORT" \
  --mysql-user=root --mysql-db=sbtest --tables="$TABLES" --table-size="$TABLE_SIZE" --threads=2 \
  --time="$DURATION" run >"$OUT/live-load.txt" &
load_pid=$!
python3 - "$SOURCE_PORT" "$EVENTUAL_PORT" "$DURATION" >"$OUT/lag.txt" <<'PY'
import subprocess, sys, time
src, dst, duration = sys.argv[1], sys.argv[2], float(sys.argv[3])
def q(port, sql):
    return subprocess.run(["mariadb", "--no-defaults", "-uroot", "-h127.0.0.1", f"-P{port}", "-N", "-e", sql],
                          capture_output=True, text=True).stdout.strip()
lags = []
end = time.time() + duration
while time.time() < end:
    q(src, "UPDATE sbtest.hb SET ts = NOW(6) WHERE id = 1")
    time.sleep(0.1)
    # lag = source clock now - the newest heartbeat the target has applied
    v = q(dst, "SELECT TIMESTAMPDIFF(MICROSECOND, ts, NOW(6)) FROM sbtest.hb WHERE id = 1")
    if v:
        lags.append(max(0, int(v)) / 1e6 - 0.0)
lags.sort()
p = lambda f: lags[min(len(lags) - 1, int(f * len(lags)))]
print(f"{p(0.5):.3f} {p(0.99):.3f} {len(lags)}")
PY
wait $load_pid
kill -TERM $live_pid; wait $live_pid || true
read -r p50 p99 samples <"$OUT/lag.txt"

python3 - "$changes" "$native_s" "$eventual_s" "$transactional_s" "$p50" "$p99" "$samples" <<'PY'
import sys
changes = int(sys.argv[1])
native, eventual, transactional, p50, p99 = map(float, sys.argv[2:7])
samples = sys.argv[7]
def line(name, secs):
    print(f"{name:<34} {secs:8.2f} s {changes / secs:12.0f} row changes/s")
print(f"row changes to apply: {changes}")
line("native replication (1 SQL thread)", native)
line("sluice, eventual", eventual)
line("sluice, transactional", transactional)
print(f"ratio transactional vs native: {native / transactional:.2f}")
print(f"live lag while following: p50 {p50:.3f} s, p99 {p99:.3f} s ({samples} samples)")
print(f"ratio: {native / eventual:.2f}")
PY

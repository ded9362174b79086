#!/usr/bin/env bash
# CDC catch-up benchmark: every contender applies the same backlog on the
# same follower server, in interleaved rounds.
#
# One source; a follower server holds the snapshot (copied by sluice) at
# position P0, with native replication configured at P0. sysbench
# oltp_write_only runs for DURATION seconds with nothing applied; the
# follower's IO thread fetches the whole backlog into its relay logs, and
# the follower's datadir is saved. Then, ROUNDS times, in a rotating order,
# the datadir is put back and one contender catches up from P0 to the end:
#   - native replication, 1 SQL thread, from the relay logs;
#   - native parallel replication, 4 threads, slave_parallel_mode=optimistic;
#   - sluice, apply.consistency: eventual, apply.parallelism 1, 2, 4 and 8;
#   - sluice, apply.consistency: transactional.
# Each is timed until it has applied the source's final position and then
# checked (CHECKSUM TABLE against the source). Printed per contender: the
# median wall time (min-max), row changes/s, and CPU-seconds per 1,000 row
# changes of the tool (sluice), the follower's server and the source's
# server (from /proc). Then sluice's lag while following a live load
# (p50/p99 of a heartbeat row updated every 100 ms on the source), at the
# load of 2 sysbench threads and at twice that (4 threads).
#
# The last line is `ratio: X` = sluice eventual (parallelism 4) ÷ native
# parallel replication, median catch-up throughputs.
#
# Env: TABLES (4), TABLE_SIZE (100000), DURATION (30), ROUNDS (3),
# SLUICE_BIN (skips the release build), SLUICE_BIN_B (a second binary:
# contenders named b-eventual-4 etc. run it, for an A/B comparison on the
# same backlog), CONTENDERS (a subset, space-separated), LAG (0: no live
# lag runs), PROFILE (perf or callgrind: also
# profile one sluice catch-up; with ROUNDS=0 only that; PROFILE_OUT: a
# directory to keep the raw profile in; PROFILE_PARALLELISM (4);
# PERF_RECORD_ARGS: perf's sampling options, default a DWARF call graph).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-30}
ROUNDS=${ROUNDS:-3}

. scripts/sandbox.sh
bench_begin 100000
bench_tools sysbench=sysbench /usr/bin/time=time
bench_sluice

sandbox_start source
sandbox_start follower --server-id=77 --skip-slave-start
OUT=$SANDBOX_ROOT/out
mkdir -p "$OUT"
sql() { sandbox_sql "$@"; }

echo "== sysbench prepare: $TABLES tables x $TABLE_SIZE rows"
sql source "CREATE DATABASE sbtest; CREATE TABLE sbtest.hb (id INT PRIMARY KEY, ts DATETIME(6)); INSERT INTO sbtest.hb VALUES (1, NOW(6))"
bench_write_only 2 prepare >/dev/null

pipeline() { # file consistency parallelism: one pipeline name, so every run shares the checkpoint
  cat >"$1" <<YAML
name: bench
source:
  mysql:
    url: mysql://root@127.0.0.1:$SOURCE_PORT
    mode: snapshot+cdc
    include: ["sbtest.*"]
    cdc:
      heartbeat_ms: 200
sinks:
  - mysql:
      url: mysql://root@127.0.0.1:$FOLLOWER_PORT
      apply:
        consistency: $2
        parallelism: $3
YAML
}

echo "== the follower: a sluice snapshot, native replication attached at the same position"
pipeline "$OUT/seed.yaml" eventual 4
"$SLUICE_BIN" run --progress off --until-caught-up "$OUT/seed.yaml" >/dev/null 2>"$OUT/seed.log"
read -r file offset <<<"$(sql follower "SELECT binlog_file, MIN(binlog_offset) FROM sluice.checkpoints WHERE pipeline = 'bench' GROUP BY binlog_file ORDER BY binlog_file LIMIT 1" -N)"
sql follower "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$SOURCE_PORT, MASTER_USER='root', MASTER_USE_GTID=no, MASTER_LOG_FILE='$file', MASTER_LOG_POS=$offset"
echo "   both at $file:$offset"

echo "== sysbench oltp_write_only for $DURATION s; nothing applied, the IO thread fetches it"
sql follower "START SLAVE IO_THREAD"
bench_write_only 2 --time="$DURATION" run >"$OUT/load.txt"
txns=$(sed -n 's/^ *transactions: *\([0-9]*\).*/\1/p' "$OUT/load.txt")
changes=$((txns * 4)) # oltp_write_only: 2 updates, 1 delete, 1 insert per transaction
read -r final_file final_offset <<<"$(sql source "SHOW MASTER STATUS" -N | awk '{print $1, $2}')"
until [ "$(sql follower "SHOW SLAVE STATUS\G" | awk '/ Master_Log_File:/{f=$2} / Read_Master_Log_Pos:/{p=$2} END{print f":"p}')" = "$final_file:$final_offset" ]; do
  sleep 0.1
done
sql follower "STOP SLAVE IO_THREAD"
sandbox_save follower
echo "   $txns transactions, $changes row changes; the source at $final_file:$final_offset, in the follower's relay logs"

SOURCE_SUMS=$(for t in $(seq 1 "$TABLES"); do sql source "CHECKSUM TABLE sbtest.sbtest$t" -N | awk '{print $2}'; done)
check_follower() { # contender
  local sums
  sums=$(for t in $(seq 1 "$TABLES"); do sql follower "CHECKSUM TABLE sbtest.sbtest$t" -N | awk '{print $2}'; done)
  [ "$sums" = "$SOURCE_SUMS" ] || { echo "error: after $1 the follower differs from the source" >&2; exit 1; }
}

now() { date +%s.%N; }
# sluice_caught_up: polls until every partition's checkpoint is at the final position.
sluice_caught_up() {
  local behind
  behind=$(sql follower "SELECT COUNT(*) FROM sluice.checkpoints WHERE pipeline='bench' AND (binlog_file < '$final_file' OR (binlog_file = '$final_file' AND binlog_offset < $final_offset))" -N 2>/dev/null || echo 1)
  [ "$behind" = 0 ]
}

# trial CONTENDER: the follower put back at P0, then CONTENDER catches up;
# appends "CONTENDER wall tool_cpu target_cpu source_cpu" to results.
trial() {
  local c=$1 t0 t1 tool=0 src0 tgt0 pid bin=$SLUICE_BIN name=$1
  if [[ $c == b-* ]]; then bin=$SLUICE_BIN_B; c=${c#b-}; fi
  sandbox_restore follower
  src0=$(proc_cpu_s "$SOURCE_PID"); tgt0=$(proc_cpu_s "$FOLLOWER_PID")
  case $c in
    native-1|native-4)
      if [ "$c" = native-4 ]; then
        sql follower "SET GLOBAL slave_parallel_threads = 4, slave_parallel_mode = 'optimistic'"
      fi
      t0=$(now)
      sql follower "START SLAVE SQL_THREAD; SELECT MASTER_POS_WAIT('$final_file', $final_offset, 900)" -N >/dev/null
      t1=$(now)
      ;;
    eventual-*|transactional)
      local consistency=${c%%-*} parallelism=${c#*-}
      [ "$c" = transactional ] && parallelism=1
      pipeline "$OUT/$c.yaml" "$consistency" "$parallelism"
      t0=$(now)
      "$bin" run --progress off "$OUT/$c.yaml" >/dev/null 2>"$OUT/$name.log" &
      pid=$!
      until sluice_caught_up; do
        kill -0 $pid 2>/dev/null || { echo "error: sluice ($name) exited:" >&2; tail "$OUT/$name.log" >&2; exit 1; }
        sleep 0.05
      done
      t1=$(now)
      # Its CPU until caught up, from /proc (not its shutdown).
      tool=$(proc_cpu_s $pid)
      kill -TERM $pid; wait $pid || true
      ;;
  esac
  local src1 tgt1
  src1=$(proc_cpu_s "$SOURCE_PID"); tgt1=$(proc_cpu_s "$FOLLOWER_PID")
  check_follower "$name"
  local wall; wall=$(python3 -c "print(f'{$t1 - $t0:.3f}')")
  echo "$name $wall $tool $(python3 -c "print(f'{$tgt1 - $tgt0:.2f} {$src1 - $src0:.2f}')")" | tee -a "$OUT/results"
}

read -ra CONTENDERS <<<"${CONTENDERS:-native-1 native-4 eventual-1 eventual-2 eventual-4 eventual-8 transactional}"
for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round of $ROUNDS (contender wall_s sluice_cpu_s follower_cpu_s source_cpu_s)"
  # Each round starts one contender later, so none always runs first.
  n=${#CONTENDERS[@]}
  for i in $(seq 0 $((n - 1))); do
    trial "${CONTENDERS[$(((i + round - 1) % n))]}"
  done
done

# PROFILE=perf|callgrind: one more sluice eventual catch-up under the
# profiler; its top entries are printed (callgrind counts instructions,
# repeatably; perf samples CPU time).
profile() {
  local pid
  sandbox_restore follower
  pipeline "$OUT/profile.yaml" eventual "${PROFILE_PARALLELISM:-4}"
  case $PROFILE in
    perf) perf record -F 999 ${PERF_RECORD_ARGS:---call-graph dwarf,16384} -e cpu-clock -o "$OUT/perf.data" -- \
            "$SLUICE_BIN" run --progress off "$OUT/profile.yaml" >/dev/null 2>"$OUT/profile.log" & ;;
    callgrind) valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" \
            "$SLUICE_BIN" run --progress off "$OUT/profile.yaml" >/dev/null 2>"$OUT/profile.log" & ;;
    *) echo "error: PROFILE is perf or callgrind" >&2; exit 1 ;;
  esac
  pid=$!
  until sluice_caught_up; do
    kill -0 $pid 2>/dev/null || { echo "error: the profiled sluice exited:" >&2; tail "$OUT/profile.log" >&2; exit 1; }
    sleep 0.2
  done
  pkill -TERM -f "$OUT/profile.yaml" || true
  wait $pid || true
  echo "== profile of sluice catching up $changes row changes ($PROFILE)"
  # PROFILE_OUT keeps the raw profile for a closer look.
  [ -z "${PROFILE_OUT:-}" ] || cp "$OUT"/perf.data "$OUT"/callgrind.out "$PROFILE_OUT"/ 2>/dev/null || true
  case $PROFILE in
    perf) # Where the time goes, by function and with what it calls.
          perf report -i "$OUT/perf.data" --children --percent-limit 1.5 --stdio -g none --sort symbol 2>/dev/null \
            | grep -v '^#' | grep -v '^$' | grep -v 'tokio::runtime\|std::sys\|core::ops\|clone3\|start_thread\|0xffff' | cut -c1-150 | head -70 ;;
    callgrind) callgrind_annotate --inclusive=no "$OUT/callgrind.out" 2>/dev/null | head -60 ;;
  esac
}
if [ -n "${PROFILE:-}" ]; then
  profile
  [ "${ROUNDS}" = 0 ] && exit 0
fi

# live_lag THREADS: sluice (eventual) caught up, then following a live
# load; p50, p99 and samples in $OUT/lag-THREADS.txt.
live_lag() {
  local threads=$1 pid load
  sandbox_restore follower
  pipeline "$OUT/live.yaml" eventual 4
  "$SLUICE_BIN" run --progress off "$OUT/live.yaml" >/dev/null 2>"$OUT/live-$threads.log" &
  pid=$!
  until sluice_caught_up; do sleep 0.1; done
  # The heartbeat row is fresh on the follower before the load starts: its
  # last value is from the previous run, and a first sample taken before
  # the first update arrives would count those seconds as lag.
  sql source "UPDATE sbtest.hb SET ts = NOW(6) WHERE id = 1"
  local want; want=$(sql source "SELECT ts FROM sbtest.hb WHERE id = 1")
  until [ "$(sql follower "SELECT ts FROM sbtest.hb WHERE id = 1")" = "$want" ]; do sleep 0.05; done
  bench_write_only "$threads" --time="$DURATION" run >"$OUT/live-load-$threads.txt" &
  load=$!
  python3 - "$SOURCE_PORT" "$FOLLOWER_PORT" "$DURATION" >"$OUT/lag-$threads.txt" <<'PY'
import subprocess, sys, time
src, dst, duration = sys.argv[1], sys.argv[2], float(sys.argv[3])
def q(port, sql):
    return subprocess.run(["mariadb", "--no-defaults", "-uroot", "-h127.0.0.1", f"-P{port}", "-N", "-e", sql],
                          capture_output=True, text=True).stdout.strip()
lags = []
start = time.time()
end = start + duration
while time.time() < end:
    q(src, "UPDATE sbtest.hb SET ts = NOW(6) WHERE id = 1")
    time.sleep(0.1)
    # The source's clock now minus the newest heartbeat the follower has.
    v = q(dst, "SELECT TIMESTAMPDIFF(MICROSECOND, ts, NOW(6)) FROM sbtest.hb WHERE id = 1")
    if v:
        lags.append((max(0, int(v)) / 1e6, time.time() - start))
worst = max(lags)
lags = sorted(l for l, _ in lags)
p = lambda f: lags[min(len(lags) - 1, int(f * len(lags)))]
print(f"{p(0.5):.3f} {p(0.99):.3f} {len(lags)} {worst[0]:.3f}@{worst[1]:.1f}s")
PY
  wait $load
  kill -TERM $pid; wait $pid || true
  # What sluice said while it followed (retries, reconnects), for a lag spike.
  grep -E 'WARN|ERROR' "$OUT/live-$threads.log" | cut -c1-200 | sed "s/^/   live-$threads: /" | head -5 || true
}
tps() { sed -n 's/^ *transactions: *[0-9]* *(\([0-9.]*\) per sec.*/\1/p' "$1"; }
lag2="" lag4=""
if [ "${LAG:-1}" != 0 ]; then
  echo "== lag while sluice follows a live $DURATION s load (2 sysbench threads, then 4)"
  live_lag 2
  live_lag 4
  read -r lag2_p50 lag2_p99 lag2_n lag2_worst <"$OUT/lag-2.txt"
  read -r lag4_p50 lag4_p99 lag4_n lag4_worst <"$OUT/lag-4.txt"
  lag2="$lag2_p50 $lag2_p99 $lag2_n $(tps "$OUT/live-load-2.txt") $lag2_worst"
  lag4="$lag4_p50 $lag4_p99 $lag4_n $(tps "$OUT/live-load-4.txt") $lag4_worst"
fi

python3 - "$OUT/results" "$changes" "$txns" "$lag2" "$lag4" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
changes, txns = int(sys.argv[2]), int(sys.argv[3])
names = {
    "native-1": "native replication, 1 SQL thread",
    "native-4": "native parallel replication, 4 optimistic",
    "eventual-1": "sluice eventual, apply.parallelism 1",
    "eventual-2": "sluice eventual, apply.parallelism 2",
    "eventual-4": "sluice eventual, apply.parallelism 4",
    "eventual-8": "sluice eventual, apply.parallelism 8",
    "transactional": "sluice transactional",
}
by = {}
for c, wall, tool, tgt, src in rows:
    by.setdefault(c, []).append((float(wall), float(tool), float(tgt), float(src)))
# The second binary's contenders (SLUICE_BIN_B), beside the first's.
for c, name in list(names.items()):
    if f"b-{c}" in by:
        names[f"b-{c}"] = f"{name} (B)"
names = {c: n for c, n in names.items() if c in by}
print(f"row changes to apply: {changes} ({txns} transactions), {max(len(r) for r in by.values())} rounds")
print(f"{'contender':<42} {'median s':>9} {'(min - max)':>16} {'changes/s':>10}   CPU-s per 1,000 changes: tool  follower  source")
median = {}
for c, name in names.items():
    runs = by[c]
    walls = [r[0] for r in runs]
    m = statistics.median(walls)
    median[c] = m
    per = lambda i: statistics.median(r[i] for r in runs) / changes * 1000
    print(f"{name:<42} {m:9.2f} {f'({min(walls):.2f} - {max(walls):.2f})':>16} {changes / m:10.0f}   {per(1):29.3f} {per(2):9.3f} {per(3):7.3f}")
if "eventual-4" in by:
    tool_us = statistics.median(r[1] for r in by["eventual-4"]) / changes * 1e6
    print(f"sluice CPU per row change (eventual, parallelism 4): {tool_us:.1f} us")
for prefix in ("", "b-"):
    per_p = ", ".join(f"p{c.split('-')[-1]} {statistics.median(r[1] for r in by[c]) / changes * 1e6:.1f}"
                      for c in names if c.startswith(f"{prefix}eventual-"))
    if per_p:
        print(f"sluice{' (B)' if prefix else ''} CPU per row change by apply.parallelism (us): {per_p}")
if "native-1" in median and "transactional" in median:
    print(f"ratio transactional vs native 1 thread: {median['native-1'] / median['transactional']:.2f}")
if "native-1" in median and "eventual-4" in median:
    print(f"ratio eventual vs native 1 thread: {median['native-1'] / median['eventual-4']:.2f}")
for arg, label in ((sys.argv[4], "2 threads"), (sys.argv[5], "4 threads (2x)")):
    if not arg:
        continue
    p50, p99, n, tps, worst = arg.split()
    print(f"live lag, load of {label} ({float(tps):.0f} txn/s): p50 {float(p50):.3f} s, p99 {float(p99):.3f} s ({n} samples; worst {worst.replace('@', ' s at ')} into the load)")
if "native-4" in median and "eventual-4" in median:
    print(f"ratio: {median['native-4'] / median['eventual-4']:.2f}")
PY

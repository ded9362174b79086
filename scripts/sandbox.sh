# Shell helpers to run throwaway MariaDB servers, for quickstart.sh and the
# benchmarks. Source this file, then:
#   sandbox_start NAME [extra mariadbd options...]   # sets NAME_PORT, NAME_SOCK
#   sandbox_sql NAME "SQL"                           # runs SQL as root
#   sandbox_stop NAME / sandbox_save NAME / sandbox_restore NAME  # clean stop; keep / put back its datadir
#   proc_cpu_s PID                                   # CPU-seconds of a process so far (/proc)
#   sandbox_stop_all                                 # kills them, removes datadirs
#   bench_tools CMD=PACKAGE...                       # apt-installs missing commands
#   bench_sluice                                     # sets SLUICE_BIN (release build unless set)
#   bench_begin [DEFAULT_TABLE_SIZE]                 # sizes (TABLES, TABLE_SIZE, ROWS), cleanup at exit, MariaDB present
#   bench_sysbench_source                            # $TABLES x $TABLE_SIZE sysbench rows in source's sbtest
#   bench_write_only THREADS ARGS...                 # sysbench oltp_write_only against source's sbtest
#   bench_copy_pipeline NAME                         # a pipeline copying sbtest from source to target, on stdout
# The Rust tests use their own harness (tests/support) with the same settings.

SANDBOX_ROOT="${SANDBOX_ROOT:-$(mktemp -d "${TMPDIR:-/tmp}/sluice-sandbox.XXXXXX")}"
SANDBOX_PIDS=()

_sandbox_bin() {
  for b in "$@"; do
    for d in /usr/sbin /usr/bin /usr/local/sbin /usr/local/bin; do
      [ -x "$d/$b" ] && { echo "$d/$b"; return 0; }
    done
    command -v "$b" 2>/dev/null && return 0
  done
  return 1
}

sandbox_require() {
  if ! _sandbox_bin mariadbd mysqld >/dev/null || ! _sandbox_bin mariadb-install-db mysql_install_db >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "== installing mariadb-server (apt)"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server mariadb-client >/dev/null
    else
      echo "error: MariaDB server binaries (mariadbd, mariadb-install-db) are missing." >&2
      echo "  hint: sudo apt-get install -y mariadb-server" >&2
      return 1
    fi
  fi
}

# Installs the Debian package of each missing command (`sysbench=sysbench`).
bench_tools() {
  local missing=() pair
  for pair in "$@"; do
    command -v "${pair%%=*}" >/dev/null || missing+=("${pair#*=}")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "== apt-get install ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# The sluice binary to measure: $SLUICE_BIN, else a release build.
bench_sluice() {
  if [ -z "${SLUICE_BIN:-}" ]; then
    echo "== building sluice (release)"
    cargo build --release --quiet --bin sluice
    SLUICE_BIN=${CARGO_TARGET_DIR:-target}/release/sluice
  fi
}

# The benchmarks' common start: TABLES (default 4) and TABLE_SIZE (default
# $1, else 250000) from the environment and ROWS their product; every
# sandbox stopped at exit; the MariaDB binaries present.
bench_begin() {
  TABLES=${TABLES:-4}
  TABLE_SIZE=${TABLE_SIZE:-${1:-250000}}
  ROWS=$((TABLES * TABLE_SIZE))
  trap sandbox_stop_all EXIT
  sandbox_require
}

# A snapshot pipeline named $1 copying sbtest from the `source` sandbox to
# the `target` sandbox, on stdout. The target's binlog is not written, as
# myloader does by default, so copies compare like with like.
bench_copy_pipeline() {
  cat <<YAML
name: $1
source:
  mysql:
    url: mysql://root@127.0.0.1:$SOURCE_PORT
    mode: snapshot
    include: ["sbtest.*"]
sinks:
  - mysql:
      url: mysql://root@127.0.0.1:$TARGET_PORT
      write_binlog: false
settings:
  parallelism: ${PARALLELISM:-4}
YAML
}

# Fills database sbtest on the `source` sandbox with $TABLES sysbench
# tables of $TABLE_SIZE rows each, with fresh statistics.
bench_sysbench_source() {
  echo "== sysbench prepare: $TABLES tables x $TABLE_SIZE rows"
  sandbox_sql source "CREATE DATABASE sbtest"
  sysbench oltp_read_write --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$SOURCE_PORT" \
    --mysql-user=root --mysql-db=sbtest --tables="$TABLES" --table-size="$TABLE_SIZE" --threads=2 prepare >/dev/null
  sandbox_sql source "ANALYZE TABLE $(seq -f 'sbtest.sbtest%g' -s, 1 "$TABLES")" >/dev/null
}

# bench_write_only THREADS ARGS...: sysbench oltp_write_only against the
# source's sbtest ($TABLES x $TABLE_SIZE), e.g. `bench_write_only 2 prepare`.
bench_write_only() {
  local threads=$1; shift
  sysbench oltp_write_only --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$SOURCE_PORT" \
    --mysql-user=root --mysql-db=sbtest --tables="$TABLES" --table-size="$TABLE_SIZE" --threads="$threads" "$@"
}

# CPU time (clock ticks) the sandbox servers have used so far, from /proc.
_sandbox_server_ticks() {
  local t=0 p f
  for p in "${SANDBOX_PIDS[@]}"; do
    # Fields 14 and 15 of /proc/PID/stat: user and system ticks.
    read -r -a f <"/proc/$p/stat" 2>/dev/null || continue
    t=$((t + f[13] + f[14]))
  done
  echo "$t"
}

# timed NAME CMD...: runs CMD under GNU time (output in $OUT); keeps the
# best (lowest) wall time of the rounds in NAME_S and the highest peak RSS
# in NAME_KB, and appends each round's wall time to NAME_WALL and its
# CPU-seconds (the command's own plus the sandbox servers', from /proc) to
# NAME_CPU, for medians.
# Returns CMD's exit status.
timed() {
  local name=$1; shift
  local rc=0 before after
  before=$(_sandbox_server_ticks)
  /usr/bin/time -f '%e %M %U %S' -o "$OUT/$name.time" "$@" || rc=$?
  after=$(_sandbox_server_ticks)
  local s kb cpu_u cpu_s best_s best_kb server_cpu
  # GNU time puts "Command exited with non-zero status N" first.
  read -r s kb cpu_u cpu_s < <(tail -n 1 "$OUT/$name.time")
  server_cpu=$(python3 -c "print(f'{($after - $before) / $(getconf CLK_TCK):.2f}')")
  echo "   $name: $s s wall, $cpu_u s user, $cpu_s s sys, servers $server_cpu CPU-s, peak RSS $((kb / 1024)) MB" >&2
  local wall_var="${name}_WALL" cpu_var="${name}_CPU"
  printf -v "$wall_var" '%s' "${!wall_var:-} $s"
  printf -v "$cpu_var" '%s' "${!cpu_var:-} $(python3 -c "print($cpu_u + $cpu_s + $server_cpu)")"
  best_s="${name}_S"; best_kb="${name}_KB"
  if [ -z "${!best_s:-}" ] || python3 -c "import sys; sys.exit(0 if $s < ${!best_s} else 1)"; then
    printf -v "$best_s" '%s' "$s"
  fi
  if [ -z "${!best_kb:-}" ] || [ "$kb" -gt "${!best_kb}" ]; then
    printf -v "$best_kb" '%s' "$kb"
  fi
  return "$rc"
}

_sandbox_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

sandbox_start() {
  local name="$1"; shift
  local dir="$SANDBOX_ROOT/$name"
  local install user_opt=()
  install=$(_sandbox_bin mariadb-install-db mysql_install_db) || return 1
  [ "$(id -u)" = 0 ] && user_opt=(--user=root)
  # A private tmpdir: a starting server deletes `#sql*` files in its tmpdir.
  mkdir -p "$dir/data" "$dir/tmp"
  TMPDIR="$dir/tmp" "$install" --no-defaults --datadir="$dir/data" --auth-root-authentication-method=normal \
    --skip-test-db "${user_opt[@]}" >"$dir/install.log" 2>&1 || { cat "$dir/install.log" >&2; return 1; }
  printf "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';\nGRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;\n" >"$dir/init.sql"
  local port; port=$(_sandbox_free_port)
  # What sandbox_restart needs to start it again.
  printf '%s\n' "$port" "$@" >"$dir/start.args"
  _sandbox_run "$name"
}

# Starts the server of sandbox NAME (its datadir, port and options as
# sandbox_start left them) and waits until it answers.
_sandbox_run() {
  local name="$1" dir="$SANDBOX_ROOT/$1" server user_opt=() args port
  server=$(_sandbox_bin mariadbd mysqld) || return 1
  [ "$(id -u)" = 0 ] && user_opt=(--user=root)
  mapfile -t args <"$dir/start.args"
  port=${args[0]}
  "$server" --no-defaults --datadir="$dir/data" --socket="$dir/mysqld.sock" --pid-file="$dir/mysqld.pid" \
    --log-error="$dir/error.log" --tmpdir="$dir/tmp" --port="$port" --bind-address=127.0.0.1 --skip-name-resolve \
    --init-file="$dir/init.sql" --log-bin="$dir/binlog" --binlog-format=ROW --binlog-row-image=FULL \
    --binlog-row-metadata=FULL --server-id="$((1000 + port % 60000))" \
    --innodb-buffer-pool-size=512M --innodb-log-file-size=256M \
    "${user_opt[@]}" "${args[@]:1}" >/dev/null 2>&1 &
  SANDBOX_PIDS+=($!)
  disown $!
  local upper; upper=$(echo "$name" | tr '[:lower:]-' '[:upper:]_')
  printf -v "${upper}_PORT" '%s' "$port"
  printf -v "${upper}_SOCK" '%s' "$dir/mysqld.sock"
  printf -v "${upper}_PID" '%s' "${SANDBOX_PIDS[-1]}"
  local i
  for i in $(seq 1 600); do
    if mariadb --no-defaults -uroot -h127.0.0.1 -P"$port" -e 'SELECT 1' >/dev/null 2>&1; then
      return 0
    fi
    kill -0 "${SANDBOX_PIDS[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "error: MariaDB '$name' did not start; its log says:" >&2
  tail -20 "$dir/error.log" >&2
  return 1
}

# Shuts sandbox NAME's server down cleanly and waits until it has exited.
sandbox_stop() {
  local upper; upper=$(echo "$1" | tr '[:lower:]-' '[:upper:]_')
  local pid_var="${upper}_PID"
  sandbox_sql "$1" "SHUTDOWN" >/dev/null 2>&1 || true
  while kill -0 "${!pid_var}" 2>/dev/null; do sleep 0.05; done
}

# sandbox_save NAME: keeps a copy of the stopped server's datadir;
# sandbox_restore NAME: puts the copy back and starts the server again, as
# it was when saved (data, relay logs, replication settings).
sandbox_save() {
  local dir="$SANDBOX_ROOT/$1"
  sandbox_stop "$1"
  rm -rf "$dir/saved" && cp -a "$dir/data" "$dir/saved"
  _sandbox_run "$1"
}

sandbox_restore() {
  local dir="$SANDBOX_ROOT/$1"
  sandbox_stop "$1"
  rm -rf "$dir/data" && cp -a "$dir/saved" "$dir/data"
  _sandbox_run "$1"
}

# CPU-seconds process PID has used so far, from /proc (user + system).
proc_cpu_s() {
  local f
  read -r -a f <"/proc/$1/stat" 2>/dev/null || { echo 0; return; }
  python3 -c "print((${f[13]} + ${f[14]}) / $(getconf CLK_TCK))"
}

sandbox_sql() {
  local upper; upper=$(echo "$1" | tr '[:lower:]-' '[:upper:]_')
  local port_var="${upper}_PORT"
  mariadb --no-defaults -uroot -h127.0.0.1 -P"${!port_var}" "${@:3}" -e "$2"
}

sandbox_stop_all() {
  local p
  for p in "${SANDBOX_PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "${SANDBOX_PIDS[@]}"; do
    while kill -0 "$p" 2>/dev/null; do sleep 0.05; done
  done
  rm -rf "$SANDBOX_ROOT"
}

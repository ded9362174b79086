#!/usr/bin/env bash
# sluice quickstart: starts a throwaway MariaDB source and target, loads a
# generated sample shop into the source, runs pipelines/quickstart.yaml, checks
# that every table arrived intact, prints a summary, and cleans up.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/sandbox.sh
trap sandbox_stop_all EXIT

sandbox_require
echo "== building sluice (debug build; 'cargo build --release' for production use)"
cargo build --quiet --bin sluice
SLUICE=${CARGO_TARGET_DIR:-target}/debug/sluice

echo "== starting a throwaway MariaDB source and target under $SANDBOX_ROOT"
sandbox_start source
sandbox_start target
echo "   source: 127.0.0.1:$SOURCE_PORT   target: 127.0.0.1:$TARGET_PORT"

echo "== loading the sample shop (customers, products, orders, order_items) into the source"
mariadb --no-defaults -uroot -h127.0.0.1 -P"$SOURCE_PORT" < scripts/sample-shop.sql >/dev/null

export SOURCE_URL="mysql://root@127.0.0.1:$SOURCE_PORT"
export TARGET_URL="mysql://root@127.0.0.1:$TARGET_PORT"
echo "== sluice validate pipelines/quickstart.yaml"
"$SLUICE" validate pipelines/quickstart.yaml
echo "== sluice run pipelines/quickstart.yaml"
"$SLUICE" run --progress log pipelines/quickstart.yaml

echo "== checking every table: row count and CHECKSUM TABLE, source vs target"
status=0
for t in customers products orders order_items; do
  s=$(sandbox_sql source "SELECT COUNT(*) FROM shop.$t; CHECKSUM TABLE shop.$t" -N | awk '{print $NF}' | paste -sd' ')
  d=$(sandbox_sql target "SELECT COUNT(*) FROM shop_replica.$t; CHECKSUM TABLE shop_replica.$t" -N | awk '{print $NF}' | paste -sd' ')
  if [ "$s" = "$d" ]; then mark=same; else mark=DIFFERENT; status=1; fi
  printf '   %-12s rows+checksum source=%-24s target=%-24s %s\n' "$t" "$s" "$d" "$mark"
done
if [ "$status" = 0 ]; then
  echo "== done: shop.* was copied to shop_replica.* exactly. Next: docs/pipeline-yaml.md, pipelines/"
else
  echo "== a table differs; please report it" >&2
fi
exit "$status"

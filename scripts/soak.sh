#!/usr/bin/env bash
# The long run of the generated differential test (tests/differential.rs):
# generated schemas, workloads and SIGKILLs, compared with the source by
# mariadb-dump, CHECKSUM TABLE and pyarrow, and by `sluice verify`, seed
# after seed, for MINUTES minutes (default 30). CI runs the same test for
# about three minutes.
#
#   scripts/soak.sh [MINUTES]
#
# Prints every seed it ran and, at the end, how many seeds and minutes
# passed. On a failure it stops with the seed and the smallest failing
# sequence of transactions it found; rerun one seed with
#   SLUICE_SEED=<hex> cargo test --test differential -- --nocapture
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-30}"
log="${SOAK_LOG:-$(mktemp "${TMPDIR:-/tmp}/sluice-soak.XXXXXX.log")}"
echo "== soak: ${minutes} min, log in $log"
start=$(date +%s)
SLUICE_DIFF_SECONDS=$((minutes * 60)) cargo test --test differential -- --nocapture 2>&1 | tee "$log" | grep -E '^seed|seed\(s\)|panicked|differences|smallest' || true
status=${PIPESTATUS[0]}
seeds=$(grep -c '^seed ' "$log" || true)
elapsed=$(( ($(date +%s) - start) / 60 ))
if [ "$status" -ne 0 ]; then
  echo "soak FAILED after $seeds seed(s), $elapsed min: see $log"
  exit 1
fi
echo "soak passed: $seeds seed(s) in $elapsed min"

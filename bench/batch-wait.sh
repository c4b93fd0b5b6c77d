#!/usr/bin/env bash
# How long the sequencer waits for more work before writing a batch
# (--batch-wait-us), one transaction per request. Medians over RUNS runs.
#   RUNS=3 bash bench/batch-wait.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
WAITS=${WAITS:-"0 500 2000"}
CLIENTS=${CLIENTS:-"16 256"}
cargo build --release --bin hygeia
hygeia=target/release/hygeia
work=$(mktemp -d /tmp/hygeia-wait.XXXXXX)
trap 'kill %1 2>/dev/null || true; rm -rf "$work"' EXIT
echo "| batch wait µs | C | runs | tx/s (median) | p50 ms (median) | p99 ms (median) |"
echo "|---|---|---|---|---|---|"
for wait_us in $WAITS; do
  rm -rf "$work/node"
  "$hygeia" serve --data-dir "$work/node" --listen 127.0.0.1:0 --batch-wait-us "$wait_us" > "$work/node.out" 2>/dev/null &
  for _ in $(seq 100); do grep -q '^listening on ' "$work/node.out" 2>/dev/null && break; sleep 0.1; done
  url=$(sed -n 's/^listening on //p' "$work/node.out")
  for c in $CLIENTS; do
    for run in $(seq "$RUNS"); do
      "$hygeia" bench ingest --node "$url" --clients "$c" --count 40000 --json
    done > "$work/runs.jsonl"
    python3 - "$work/runs.jsonl" "$wait_us" "$c" <<'PY'
import json, statistics, sys
rs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
m = lambda k: statistics.median(r[k] for r in rs)
print(f"| {sys.argv[2]} | {sys.argv[3]} | {len(rs)} | {m('tx_per_sec'):,.0f} | {m('p50_ms'):.2f} | {m('p99_ms'):.2f} |")
PY
  done
  kill %1; wait %1 2>/dev/null || true
done

#!/usr/bin/env bash
# Durable token transfers (unit.transfer, docs/economy.md) against plain
# attestations (attest), same node, same concurrency, same batch size, same
# run: pre-signed, batched, each request acknowledged once its batch is on
# disk. Prints a Markdown table of medians over RUNS runs, the ratio, and
# the load average beside it.
#
#   bash bench/transfers.sh          # RUNS=3, C=16, batches of 1000
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
CLIENTS=${CLIENTS:-16}
BATCH=${BATCH:-1000}
COUNT=${COUNT:-200000}
work=$(mktemp -d /tmp/hygeia-transfers.XXXXXX)
results="$work/results.jsonl"
node_pid=""
cleanup() {
  [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cargo build --release --bin hygeia
hygeia=target/release/hygeia
gov=$("$hygeia" key new --out "$work/governance.key" 2>/dev/null)
"$hygeia" serve --data-dir "$work/node" --listen 127.0.0.1:0 --governance "$gov" > "$work/node.out" 2>"$work/node.err" &
node_pid=$!
for _ in $(seq 100); do grep -q '^listening on ' "$work/node.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/node.out")
[ -n "$url" ] || { cat "$work/node.err"; exit 1; }
for run in $(seq "$RUNS"); do
  "$hygeia" bench transfers --node "$url" --governance-key "$work/governance.key" \
    --clients "$CLIENTS" --count "$COUNT" --batch-size "$BATCH" --json >> "$results"
  "$hygeia" bench ingest --node "$url" --clients "$CLIENTS" --count "$COUNT" --batch-size "$BATCH" --json >> "$results"
  echo "run $run done; $(uptime)" >&2
done
python3 - "$results" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
groups = {}
for r in rows:
    groups.setdefault(r["what"], []).append(r)
print("| what | C | runs | tx/s (median) | p50 ms | p99 ms | errors |")
print("|---|---|---|---|---|---|---|")
for what, rs in sorted(groups.items()):
    med = lambda k: statistics.median(x[k] for x in rs)
    print(f"| {what} | {rs[0]['clients']} | {len(rs)} | {med('tx_per_sec'):,.0f} | {med('p50_ms'):.2f} | {med('p99_ms'):.2f} | {sum(x['errors'] for x in rs)} |")
t = [g for w, g in groups.items() if w.startswith("unit.transfer")]
a = [g for w, g in groups.items() if w.startswith("hygeia batch")]
if t and a:
    ratio = statistics.median(x["tx_per_sec"] for x in t[0]) / statistics.median(x["tx_per_sec"] for x in a[0])
    print(f"\ntransfers / attestations, same run: {ratio:.2f}")
PY
uptime

#!/usr/bin/env bash
# Permitted record reads over HTTP: each read is a signed request (RFC 9421),
# a Cedar decision, a durable `access` event on the ledger, and the record
# decrypted from the vault. One node on a fresh data directory; the load
# generator on the same machine. Prints a Markdown table of medians over
# RUNS runs.
#
#   bash bench/reads.sh            # RUNS=3
#   RUNS=5 CLIENTS="64 256" bash bench/reads.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
CLIENTS=${CLIENTS:-"16 64 256"}
COUNT=${COUNT:-50000}
BYTES=${BYTES:-4096}
work=$(mktemp -d /tmp/hygeia-reads.XXXXXX)
results="$work/results.jsonl"
node_pid=""
cleanup() {
  [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cargo build --release --bin hygeia
hygeia=target/release/hygeia

# Reads for treatment need a licence: the bench licenses its reader through
# a board it puts on the trust list with the node's governance key.
governance=$("$hygeia" key new --out "$work/governance.key" 2>/dev/null)
"$hygeia" serve --data-dir "$work/node" --listen 127.0.0.1:0 --governance "$governance" >"$work/node.out" 2>"$work/node.err" &
node_pid=$!
for _ in $(seq 100); do
  url=$(sed -n 's/^listening on //p' "$work/node.out")
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { echo "the node did not start" >&2; cat "$work/node.err" >&2; exit 1; }

for c in $CLIENTS; do
  for run in $(seq "$RUNS"); do
    "$hygeia" bench reads --node "$url" --governance-key "$work/governance.key" --clients "$c" --count "$COUNT" --record-bytes "$BYTES" --json >>"$results"
  done
done

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| clients | reads/s (median) | p50 ms | p99 ms | errors | runs |")
print("|---|---|---|---|---|---|")
for c in sorted({r["clients"] for r in rows}):
    rs = [r for r in rows if r["clients"] == c]
    med = lambda k: statistics.median(r[k] for r in rs)
    print(f"| {c} | {med('per_sec'):,.0f} | {med('p50_ms'):.2f} | {med('p99_ms'):.2f} | {sum(r['errors'] for r in rs)} | {len(rs)} |")
PY

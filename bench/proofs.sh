#!/usr/bin/env bash
# Proof latency at a large log, and offline verification throughput.
#
#   bash bench/proofs.sh                 # COUNT=10000000
#   COUNT=1000000 RUNS=3 bash bench/proofs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-10000000}
RUNS=${RUNS:-3}
work=${WORK:-$(mktemp -d /tmp/hygeia-proofs.XXXXXX)}
node_pid=""
trap '[ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null || true' EXIT

cargo build --release --bin hygeia
hygeia=target/release/hygeia

start=$(date +%s)
"$hygeia" bench fill --data-dir "$work/node" --count "$COUNT"
echo "fill of $COUNT entries took $(( $(date +%s) - start )) s" >&2
du -sh "$work/node" >&2

"$hygeia" serve --data-dir "$work/node" --listen 127.0.0.1:0 > "$work/node.out" 2>"$work/node.err" &
node_pid=$!
for _ in $(seq 300); do grep -q '^listening on ' "$work/node.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/node.out")
for run in $(seq "$RUNS"); do
  "$hygeia" bench proofs --node "$url" --samples 20000 --clients 8
done
"$hygeia" bench proofs --node "$url" --samples 5000 --clients 1
echo "--- hygeia verify over HTTP" >&2
"$hygeia" verify "$url" --key "$(curl -s "$url/v1/node" | python3 -c 'import json,sys; print(json.load(sys.stdin)["checkpoint_verifier_key"])')"
echo "data left in $work (delete it when done)" >&2

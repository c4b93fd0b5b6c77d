#!/usr/bin/env bash
# Multi-organization network benchmark (docs/network.md): finalized,
# durable transactions per second and acknowledgement (= finality) latency
# of four nodes ordering one log with BFT consensus on this machine, and of
# one node alone (the embedded sequencer, and a one-validator BFT network)
# in the same run, so the cost of consensus is a ratio. Load goes to the
# first node from concurrent clients, pre-signed (`hygeia bench ingest`).
#
#   bash bench/network.sh                       # debug build, RUNS=3
#   HYGEIA_BIN=target/release/hygeia bash bench/network.sh
#   RESULTS=/tmp/rows.jsonl …                 # also keep the raw rows
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
CLIENTS=${CLIENTS:-16}
SINGLE=${SINGLE:-2000}    # transactions per run, one per request
BATCHED=${BATCHED:-20000} # transactions per run, in batches of BATCH
BATCH=${BATCH:-100}
hygeia=${HYGEIA_BIN:-target/debug/hygeia}
[ -x "$hygeia" ] || cargo build --bin hygeia
work=$(mktemp -d /tmp/hygeia-netbench.XXXXXX)
results="$work/results.jsonl"
pids=()
p2p_ports=()
stop_all() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); p2p_ports=(); }
trap 'stop_all; sleep 1; rm -rf "$work"' EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# TCP payload bytes sent so far (the kernel's tcp_info bytes_sent) on the
# open connections to or from the nodes' p2p ports: everything the nodes
# sent each other (consensus votes and certificates, blocks, passed-on
# submissions, cosignatures, encrypted and framed), both directions.
p2p_sent() {
  [ ${#p2p_ports[@]} -gt 0 ] || { echo 0; return; }
  ss -tinH state established | python3 -c '
import re, sys
ports = set(sys.argv[1:]); total = 0; pair = None
for line in sys.stdin:
    if not line[0].isspace():
        cols = line.split()
        pair = (cols[2].rsplit(":", 1)[1], cols[3].rsplit(":", 1)[1])
    elif pair and (pair[0] in ports or pair[1] in ports):
        m = re.search(r"bytes_sent:(\d+)", line)
        total += int(m.group(1)) if m else 0
        pair = None
print(total)' "${p2p_ports[@]}"
}
wait_url() { # data-dir-output-file
  for _ in $(seq 300); do grep -q '^listening on ' "$1" 2>/dev/null && break; sleep 0.1; done
  sed -n 's/^listening on //p' "$1"
}

# Starts a setup (in this shell, so stop_all knows its processes) and sets
# $url to the node load goes to.
start() { # kind: sequencer | bft1 | bft4
  local dir="$work/$1.$run"
  case $1 in
    sequencer)
      "$hygeia" serve --data-dir "$dir/node" --listen 127.0.0.1:0 > "$dir.out" 2>"$dir.err" &
      pids+=($!); url=$(wait_url "$dir.out") ;;
    bft1|bft4)
      local n=${1#bft} args=() p
      p2p_ports=()
      for i in $(seq "$n"); do p=$(port); p2p_ports+=("$p"); args+=(--node "$dir/org$i@127.0.0.1:$p"); done
      "$hygeia" network init "${args[@]}" > /dev/null
      for i in $(seq "$n"); do
        "$hygeia" serve --data-dir "$dir/org$i" --peers "$dir/org$i/peers.json" --listen 127.0.0.1:0 > "$dir.$i.out" 2>"$dir.$i.err" &
        pids+=($!)
      done
      for i in $(seq 2 "$n"); do wait_url "$dir.$i.out" > /dev/null; done
      url=$(wait_url "$dir.1.out") ;;
  esac
}

for run in $(seq "$RUNS"); do
  for kind in sequencer bft1 bft4; do
    url=""; start $kind
    [ -n "$url" ] || { echo "$kind did not start" >&2; exit 1; }
    for b in 1 "$BATCH"; do
      n=$SINGLE; [ "$b" -gt 1 ] && n=$BATCHED
      sent=$(p2p_sent)
      "$hygeia" bench ingest --node "$url" --clients "$CLIENTS" --count "$n" --batch-size "$b" --json > "$work/last.json"
      sent=$(( $(p2p_sent) - sent ))
      python3 -c "import json,sys; r=json.load(open('$work/last.json')); r['setup']='$kind'; r['batch']=$b; r['p2p_bytes']=$sent; r['count']=$n; r['load']='$(cut -d' ' -f1 /proc/loadavg)'; print(json.dumps(r))" >> "$results"
    done
    stop_all
    echo "run $run $kind done (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  done
done

[ -z "${RESULTS:-}" ] || cp "$results" "$RESULTS" # keep the raw rows
python3 - "$results" "$CLIENTS" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
groups = {}
for r in rows:
    groups.setdefault((r["setup"], r["batch"]), []).append(r)
names = {"sequencer": "1 node, embedded sequencer", "bft1": "1 node, BFT (one validator)", "bft4": "4 nodes, BFT"}
print(f"| setup | tx per request | C | runs | finalized tx/s (median) | ack p50 ms | ack p99 ms | errors | p2p bytes/tx (median) | load (1 min, after each run) |")
print("|---|---|---|---|---|---|---|---|---|---|")
med = lambda rs, k: statistics.median(x[k] for x in rs)
for (setup, b), rs in sorted(groups.items(), key=lambda k: (k[0][1], list(names).index(k[0][0]))):
    per_tx = statistics.median(x['p2p_bytes'] / x['count'] for x in rs)
    print(f"| {names[setup]} | {b} | {sys.argv[2]} | {len(rs)} | {med(rs,'tx_per_sec'):,.0f} | {med(rs,'p50_ms'):.1f} | {med(rs,'p99_ms'):.1f} | {sum(x['errors'] for x in rs)} | {per_tx:,.0f} | {' '.join(x['load'] for x in rs)} |")
print()
for b in sorted({b for _, b in groups}):
    four, seq = groups.get(("bft4", b)), groups.get(("sequencer", b))
    if four and seq:
        print(f"- {b} tx per request: 4 nodes BFT / 1 node sequencer = {med(four,'tx_per_sec')/med(seq,'tx_per_sec'):.2f}")
PY

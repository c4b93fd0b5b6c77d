#!/usr/bin/env bash
# Catch-up speed of a restarted node (docs/network.md, "Restart and
# catch-up"): four organizations' nodes; the fourth is stopped, COUNT
# transactions are finalized by the other three (in batches of BATCH from
# CLIENTS clients, `hygeia bench ingest`), then the fourth is started again
# and timed until its checkpoint has the others' size and root. Reports
# entries/s of catch-up, from the restart to the same root, and the time
# to its first answer (start-up, replay of its own log).
#
#   HYGEIA_BIN=target/release/hygeia bash bench/network-catchup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
COUNT=${COUNT:-40000}
BATCH=${BATCH:-100}
CLIENTS=${CLIENTS:-16}
hygeia=${HYGEIA_BIN:-target/debug/hygeia}
[ -x "$hygeia" ] || cargo build --bin hygeia
work=$(mktemp -d /tmp/hygeia-catchup.XXXXXX)
pids=()
stop_all() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
trap 'stop_all; sleep 1; rm -rf "$work"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
checkpoint() { curl -sf "$1/checkpoint" | sed -n 2,3p | tr '\n' ' '; }

for run in $(seq "$RUNS"); do
  dir="$work/run$run"; args=(); http=()
  for i in 1 2 3 4; do args+=(--node "$dir/org$i@127.0.0.1:$(port)"); http+=("127.0.0.1:$(port)"); done
  "$hygeia" network init "${args[@]}" > /dev/null
  serve() { # i
    "$hygeia" serve --data-dir "$dir/org$1" --peers "$dir/org$1/peers.json" --listen "${http[$(($1-1))]}" >> "$dir/org$1.out" 2>>"$dir/org$1.err" &
    pids+=($!); last_pid=$!
  }
  for i in 1 2 3 4; do serve $i; done
  for h in "${http[@]}"; do until curl -sf "http://$h/v1/health" >/dev/null; do sleep 0.1; done; done
  org4_pid=$last_pid
  # Something in every node's log first, so the restart replays a log.
  "$hygeia" bench ingest --node "http://${http[0]}" --clients "$CLIENTS" --count 1000 --batch-size "$BATCH" --json > /dev/null
  kill "$org4_pid"; wait "$org4_pid" 2>/dev/null || true
  before=$(checkpoint "http://${http[0]}" | cut -d' ' -f1)
  "$hygeia" bench ingest --node "http://${http[0]}" --clients "$CLIENTS" --count "$COUNT" --batch-size "$BATCH" --json > "$dir/ingest.json"
  target=$(checkpoint "http://${http[0]}")
  behind=$(( ${target%% *} - before ))
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  t0=$(now); serve 4
  until curl -sf "http://${http[3]}/v1/health" >/dev/null; do sleep 0.05; done
  t1=$(now)
  until [ "$(checkpoint "http://${http[3]}")" = "$target" ]; do sleep 0.05; done
  t2=$(now)
  python3 -c "import json,sys; t0,t1,t2=map(float,sys.argv[1:4]); n=int(sys.argv[4]); print(json.dumps({'run':int(sys.argv[5]),'entries_behind':n,'seconds_to_answer':round(t1-t0,3),'seconds_to_same_root':round(t2-t0,3),'entries_per_sec':round(n/(t2-t0)),'load_before':sys.argv[6]}))" "$t0" "$t1" "$t2" "$behind" "$run" "$load"
  stop_all
done

#!/usr/bin/env bash
# Catch-up speed of a restarted node (docs/network.md, "Restart and
# catch-up"): four organizations' nodes; the fourth is stopped, COUNT
# transactions are finalized by the other three (in batches of BATCH from
# CLIENTS clients, `hygeia bench ingest`), then the fourth is started again
# and timed until its checkpoint has the others' size and root. Reports
# entries/s of catch-up, from the restart to the same root, and the time
# to its first answer (start-up, replay of its own log).
#
# MODE=snapshot first runs `hygeia network catch-up` on the stopped node
# (docs/network.md, "Catch-up from a state snapshot": the newest state
# f + 1 peers vouch for, with the blocks and entries to it, not executed)
# and times it, then starts it; MODE=blocks (the default) only starts it.
# Every node snapshots where its log crosses a multiple of SNAPSHOT_EVERY
# in both modes, so they differ only in the catch-up.
#
#   HYGEIA_BIN=target/release/hygeia bash bench/network-catchup.sh
#   MODE=snapshot HYGEIA_BIN=target/release/hygeia bash bench/network-catchup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
COUNT=${COUNT:-40000}
BATCH=${BATCH:-100}
CLIENTS=${CLIENTS:-16}
MODE=${MODE:-blocks}
SNAPSHOT_EVERY=${SNAPSHOT_EVERY:-10000}
case "$MODE" in blocks|snapshot) ;; *) echo "MODE is blocks or snapshot" >&2; exit 2 ;; esac
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
  for i in 1 2 3 4; do h="127.0.0.1:$(port)"; args+=(--node "$dir/org$i@127.0.0.1:$(port)@http://$h"); http+=("$h"); done
  "$hygeia" network init "${args[@]}" > /dev/null
  serve() { # i
    "$hygeia" serve --data-dir "$dir/org$1" --peers "$dir/org$1/peers.json" --listen "${http[$(($1-1))]}" --snapshot-every "$SNAPSHOT_EVERY" >> "$dir/org$1.out" 2>>"$dir/org$1.err" &
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
  installed=0
  if [ "$MODE" = snapshot ]; then
    # The peers' newest snapshot past the stopped node's log, written in
    # the background: wait until two of them (f + 1) serve it.
    want=$(( (${target%% *} / SNAPSHOT_EVERY) * SNAPSHOT_EVERY ))
    until [ "$(for h in "${http[@]:0:3}"; do curl -sf "http://$h/v1/network/snapshots" | python3 -c "import json,sys; print(max([s['size'] for s in json.load(sys.stdin)['snapshots']] or [0]))"; done | awk -v w="$want" '$1>=w' | wc -l)" -ge 2 ]; do sleep 0.2; done
    load=$(cut -d' ' -f1-3 /proc/loadavg)
  fi
  t0=$(now)
  if [ "$MODE" = snapshot ]; then
    "$hygeia" network catch-up --data-dir "$dir/org4" > "$dir/catch-up.out" 2> "$dir/catch-up.err"
    installed=$(sed -n 's/^caught up from [0-9]* to \([0-9]*\) entries.*/\1/p' "$dir/catch-up.out")
  fi
  tc=$(now); serve 4
  until curl -sf "http://${http[3]}/v1/health" >/dev/null; do sleep 0.05; done
  t1=$(now)
  until [ "$(checkpoint "http://${http[3]}")" = "$target" ]; do sleep 0.05; done
  t2=$(now)
  python3 -c "import json,sys; t0,tc,t1,t2=map(float,sys.argv[1:5]); n=int(sys.argv[5]); print(json.dumps({'run':int(sys.argv[6]),'mode':sys.argv[8],'entries_behind':n,'installed_to':int(sys.argv[9] or 0),'seconds_catch_up_command':round(tc-t0,3),'seconds_to_answer':round(t1-t0,3),'seconds_to_same_root':round(t2-t0,3),'entries_per_sec':round(n/(t2-t0)),'load_before':sys.argv[7]}))" "$t0" "$tc" "$t1" "$t2" "$behind" "$run" "$load" "$MODE" "$installed"
  # Where the restarted node's start went (its own log line).
  grep -a "data directory opened" "$dir/org4.err" | tail -1 | sed 's/\x1b\[[0-9;]*m//g' >&2 || true
  stop_all
done

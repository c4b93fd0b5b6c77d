#!/usr/bin/env bash
# Durable ingest benchmark: hygeia (single and batched submission) against
# PostgreSQL (one INSERT per event, synchronous_commit=on), same signed
# events, same concurrency, same machine, same run. Prints a Markdown table
# of medians over RUNS runs.
#
#   bash bench/ingest.sh            # RUNS=3
#   RUNS=5 bash bench/ingest.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
CLIENTS=${CLIENTS:-"1 16 256"}
BATCH=${BATCH:-1000}
work=$(mktemp -d /tmp/hygeia-bench.XXXXXX)
results="$work/results.jsonl"
node_pid=""
cleanup() {
  [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null || true
  if [ -f "$work/pg/postmaster.pid" ]; then
    su postgres -c "$PG_BIN/pg_ctl -D $work/pg -m fast stop" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

cargo build --release --bin hygeia
hygeia=target/release/hygeia

# PostgreSQL from Debian's packages, in a private cluster for this run.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "installing PostgreSQL…" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
PG_BIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
mkdir -p "$work/pg" && chown postgres "$work" "$work/pg"
su postgres -c "$PG_BIN/initdb -D $work/pg -U postgres --auth=trust" >/dev/null
su postgres -c "$PG_BIN/pg_ctl -D $work/pg -l $work/pg.log -w start -o \"-k $work -p 55432 -c listen_addresses='' -c max_connections=400 -c synchronous_commit=on -c fsync=on -c shared_buffers=256MB\"" >/dev/null
dsn="host=$work port=55432 user=postgres dbname=postgres"

# One node for the whole run, on a fresh data directory.
"$hygeia" serve --data-dir "$work/node" --listen 127.0.0.1:0 > "$work/node.out" 2>"$work/node.err" &
node_pid=$!
for _ in $(seq 100); do grep -q '^listening on ' "$work/node.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/node.out")
[ -n "$url" ] || { cat "$work/node.err"; exit 1; }
echo "node at $url; PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') at $work" >&2

count_for() { # events per run for a concurrency
  case $1 in 1) echo 3000 ;; 16) echo 30000 ;; *) echo 60000 ;; esac
}
for run in $(seq "$RUNS"); do
  for c in $CLIENTS; do
    n=$(count_for "$c")
    "$hygeia" bench ingest --node "$url" --clients "$c" --count "$n" --batch-size 1 --json >> "$results"
    nb=$(( c == 1 ? 100000 : 200000 ))
    b=$BATCH; [ "$c" -eq 256 ] && b=100
    "$hygeia" bench ingest --node "$url" --clients "$c" --count "$nb" --batch-size "$b" --json >> "$results"
    "$hygeia" bench postgres --dsn "$dsn" --clients "$c" --count "$n" --json >> "$results"
    echo "run $run C=$c done" >&2
  done
done

python3 - "$results" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
groups = {}
for r in rows:
    groups.setdefault((r["what"], r["clients"]), []).append(r)
print("| system | C | runs | tx/s (median) | p50 ms | p99 ms | errors |")
print("|---|---|---|---|---|---|---|")
for (what, c), rs in sorted(groups.items(), key=lambda k: (k[0][1], k[0][0])):
    med = lambda k: statistics.median(x[k] for x in rs)
    print(f"| {what} | {c} | {len(rs)} | {med('tx_per_sec'):,.0f} | {med('p50_ms'):.2f} | {med('p99_ms'):.2f} | {sum(x['errors'] for x in rs)} |")
print()
for c in sorted({c for _, c in groups}):
    pg = groups.get(("postgres insert", c))
    single = groups.get(("hygeia single", c))
    if pg and single:
        ratio = statistics.median(x["tx_per_sec"] for x in single) / statistics.median(x["tx_per_sec"] for x in pg)
        print(f"- C={c}: hygeia single / PostgreSQL = {ratio:.2f}x")
    for (what, cc), rs in groups.items():
        if cc == c and what.startswith("hygeia batch") and pg:
            ratio = statistics.median(x["tx_per_sec"] for x in rs) / statistics.median(x["tx_per_sec"] for x in pg)
            print(f"- C={c}: {what} / PostgreSQL = {ratio:.2f}x")
PY

#!/usr/bin/env bash
# FHIR side by side: hygeia against PostgreSQL, in the same run. The same
# synthetic resources (same generator, same seed) go into a node (consent
# decided and a durable `access` event for every answer) and into
# PostgreSQL 15 from Debian's packages (JSONB, GIN and B-tree indexes on the
# searched parameters, no consent, no ledger); then the same reads and
# searches run against each from the same load generator at the same
# concurrency. Ingest runs once per system; reads and searches RUNS times,
# alternating systems. Prints the medians, Hygeia / PostgreSQL ratios, the
# machine's load before each phase, and the disk each system used.
#
#   bash bench/fhir-postgres.sh                       # 1,000 x 100, C=32, RUNS=3
#   PATIENTS=10000 RUNS=1 bash bench/fhir-postgres.sh # 1,000,000 resources
#   HYGEIA_BIN=/path/to/hygeia bash bench/fhir-postgres.sh   # another build
#   KEEP=1 bash bench/fhir-postgres.sh   # keep the node's data directory
#                                          (e.g. to time a restart on it)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
PATIENTS=${PATIENTS:-1000}
PER_PATIENT=${PER_PATIENT:-100}
CLIENTS=${CLIENTS:-32}
SECONDS_PER_PHASE=${SECONDS_PER_PHASE:-15}
BASE=${BENCH_DIR:-/tmp}
work=$(mktemp -d "$BASE/hygeia-fhir-pg.XXXXXX")
results="$work/results.jsonl"
node_pid=""
PG_BIN=""
cleanup() {
  if [ -n "$node_pid" ]; then
    kill "$node_pid" 2>/dev/null || true
    wait "$node_pid" 2>/dev/null || true
  fi
  if [ -n "$PG_BIN" ] && [ -f "$work/pg/postmaster.pid" ]; then
    as_postgres "$PG_BIN/pg_ctl -D $work/pg -m fast stop" >/dev/null 2>&1 || true
  fi
  if [ -n "${KEEP:-}" ] && [ -d "$work/node" ]; then
    rm -rf "$work/pg"
    echo "kept the node's data directory: $work/node (governance key $work/governance.key)" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
as_postgres() { if [ "$(id -u)" = 0 ]; then su postgres -c "$1"; else sh -c "$1"; fi; }

# HYGEIA_BIN runs another build (e.g. one made before a change).
if [ -n "${HYGEIA_BIN:-}" ]; then
  hygeia=$HYGEIA_BIN
else
  cargo build --release --bin hygeia
  hygeia=target/release/hygeia
fi

# PostgreSQL from Debian's packages, in a private cluster on a Unix socket
# in the run's directory: durable commits (fsync, synchronous_commit on).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "installing PostgreSQL…" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
PG_BIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
mkdir -p "$work/pg"
[ "$(id -u)" = 0 ] && chown postgres "$work" "$work/pg"
as_postgres "$PG_BIN/initdb -D $work/pg -U postgres --auth=trust" >/dev/null
as_postgres "$PG_BIN/pg_ctl -D $work/pg -l $work/pg.log -w start -o \"-k $work -p 55433 -c listen_addresses='' -c max_connections=200 -c synchronous_commit=on -c fsync=on -c shared_buffers=512MB\"" >/dev/null
dsn="host=$work port=55433 user=postgres dbname=postgres"

governance=$("$hygeia" key new --out "$work/governance.key" 2>/dev/null)
"$hygeia" serve --data-dir "$work/node" --listen 127.0.0.1:0 --network hygeia.example/bench --governance "$governance" >"$work/node.out" 2>"$work/node.err" &
node_pid=$!
url=""
for _ in $(seq 100); do
  url=$(sed -n 's/^listening on //p' "$work/node.out")
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { echo "the node did not start" >&2; cat "$work/node.err" >&2; exit 1; }
echo "node at $url; PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') at $work" >&2

common=(--patients "$PATIENTS" --per-patient "$PER_PATIENT" --clients "$CLIENTS" --seconds "$SECONDS_PER_PHASE")
load() { uptime | sed 's/.*load average: //'; }
run() { # label, then the bench's arguments
  local label=$1; shift
  local before; before=$(load)
  "$hygeia" bench fhir "$@" "${common[@]}" | grep '^{' |
    python3 -c 'import json,sys
for l in sys.stdin:
    r=json.loads(l); r["run"]=sys.argv[1]; r["load_before"]=sys.argv[2]; print(json.dumps(r))' "$label" "$before" >>"$results" ||
    echo "run $label ($*): some answers were errors (see not 2xx)" >&2
  echo "$label done (load before: $before)" >&2
}
for r in $(seq "$RUNS"); do
  if [ "$r" = 1 ]; then
    run "$r" --node "$url" --governance-key "$work/governance.key"
    run "$r" --postgres "$dsn"
  else
    run "$r" --node "$url" --skip-ingest
    run "$r" --postgres "$dsn" --skip-ingest
  fi
done

node_bytes=$(du -sb "$work/node" | cut -f1)
node_allocated=$(du -s --block-size=1 "$work/node" | cut -f1)
echo "node data directory, bytes per file:"
(cd "$work/node" && find . -type f -printf '%s\t%P\n' | sort -rn)
echo
node_files=$(find "$work/node" -type f | wc -l)
pg_bytes=$(as_postgres "$PG_BIN/psql -h $work -p 55433 -U postgres -At -c \"SELECT pg_total_relation_size('hygeia_bench_fhir')\"")
pg_cluster=$(du -sb "$work/pg" | cut -f1)
python3 - "$results" "$node_bytes" "$node_files" "$pg_bytes" "$pg_cluster" "$(load)" "$node_allocated" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
node_bytes, node_files, pg_bytes, pg_cluster, load_after, node_allocated = sys.argv[2:8]
groups = {}
for r in rows:
    groups.setdefault(r["what"], []).append(r)
print("| what | runs | per s (median) | p50 ms | p99 ms | not 2xx / errors | load before (1, 5, 15 min) |")
print("|---|---|---|---|---|---|---|")
for what, rs in sorted(groups.items()):
    med = lambda k: statistics.median(x[k] for x in rs)
    loads = "; ".join(x["load_before"] for x in rs)
    print(f"| {what} | {len(rs)} | {med('per_sec'):,.0f} {rs[0]['unit']}/s | {med('p50_ms'):.2f} | {med('p99_ms'):.2f} | {sum(x['not_2xx'] for x in rs)} | {loads} |")
print()
for phase in ["ingest", "read", "search"]:
    h, p = groups.get(f"hygeia fhir {phase}"), groups.get(f"postgres fhir {phase}")
    if h and p:
        mh = statistics.median(x["per_sec"] for x in h)
        mp = statistics.median(x["per_sec"] for x in p)
        ph = statistics.median(x["p99_ms"] for x in h)
        pp = statistics.median(x["p99_ms"] for x in p)
        print(f"- {phase}: Hygeia / PostgreSQL throughput = {mh / mp:.2f} ({mh:,.0f} / {mp:,.0f} per s); p99 {ph:.2f} ms / {pp:.2f} ms")
print(f"- disk: node data directory {int(node_bytes)/2**30:.2f} GiB in {node_files} files ({int(node_allocated)/2**30:.2f} GiB allocated); PostgreSQL table with indexes and TOAST {int(pg_bytes)/2**30:.2f} GiB (whole cluster with WAL {int(pg_cluster)/2**30:.2f} GiB)")
print(f"- load after: {load_after}")
PY

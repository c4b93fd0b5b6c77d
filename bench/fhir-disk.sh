#!/usr/bin/env bash
# Disk per file after a FHIR bench run on a fresh node (BENCHMARKS.md §11.7):
# files.tsv holds each file's size and the bytes the file system allocated
# to it (redb grows a file in steps; the part never written is sparse).
# disk.json (`hygeia bench disk`, from REPORT_BIN, default the binary run:
# give a newer one to report on an older binary's directory) holds each
# redb table's rows and pages and the plaintext the vault holds (the sum of
# the records' lengths in custody.redb); the last lines printed are the
# plaintext and the directory's ratio to it.
# usage: bench/fhir-disk.sh <hygeia binary> <port> <out dir> [patients] [per-patient]
set -euo pipefail
bin=$1; port=$2; dir=$3; patients=${4:-100}; per=${5:-100}
mkdir -p "$dir"
gov=$("$bin" key new --out "$dir/gov.key" 2>/dev/null)
"$bin" serve --data-dir "$dir/node" --listen 127.0.0.1:$port --network hygeia.example/bench --governance "$gov" >"$dir/node.out" 2>"$dir/node.err" &
pid=$!
for _ in $(seq 300); do grep -q '^listening on' "$dir/node.out" && break; sleep 0.2; done
url=$(sed -n 's/^listening on //p' "$dir/node.out")
"$bin" bench fhir --node "$url" --governance-key "$dir/gov.key" --patients "$patients" --per-patient "$per" --clients 8 --seconds 1 2>/dev/null | grep '^{' > "$dir/results.jsonl" || true
kill $pid; wait $pid || true
(cd "$dir/node" && find . -type f -printf '%s\t%b\t%P\n' | awk -F'\t' '{print $1 "\t" $2 * 512 "\t" $3}' | sort -rn) > "$dir/files.tsv"
du -sb "$dir/node" | cut -f1 > "$dir/total"
du -s -B1 "$dir/node" | cut -f1 > "$dir/allocated"
"${REPORT_BIN:-$bin}" bench disk --data-dir "$dir/node" > "$dir/disk.json"
sent=$(jq -s 'map(select(.phase == "ingest"))[0].resource_bytes // empty' "$dir/results.jsonl" 2>/dev/null || true)
jq -r --arg sent "${sent:-?}" '
  "file\tsize\tallocated\tallocated per record",
  (. as $r | .files[] | "\(.path)\t\(.size)\t\(.allocated)\t\(.allocated / $r.records | floor)"),
  "redb table\trows\tstored\tpage bytes\tpage bytes per record",
  (. as $r | .tables[] | select(.rows > 0) | "\(.file) \(.table)\t\(.rows)\t\(.stored)\t\(.page_bytes)\t\(.page_bytes / $r.records | floor)"),
  "records\t\(.records)",
  "plaintext (sizes in custody.redb)\t\(.plaintext)\t\(.plaintext / .records | floor) per record",
  "plaintext as sent (the resources in the Bundles)\t\($sent)",
  "directory size\t\(.size)\t\(.size / .plaintext * 100 | round / 100)x the plaintext",
  "directory allocated\t\(.allocated)\t\(.allocated / .plaintext * 100 | round / 100)x the plaintext"
' "$dir/disk.json" | tee "$dir/summary.tsv"

#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for a short while on the stable toolchain,
# starting from a copy of its seeds in fuzz/seeds/<target>/. Used by
# .ci/run on every CI run; also the way to fuzz for longer by hand.
#
# The targets are built as cargo-fuzz builds them, minus the sanitizer
# (which needs nightly): libfuzzer-sys links libFuzzer, and SanitizerCoverage
# instrumentation (inline 8-bit counters, PC table, comparison tracing)
# makes the run coverage-guided. A run that reports no coverage fails, so an
# uninstrumented build cannot pass for a fuzzing run.
#
# Usage: scripts/fuzz-ci.sh [SECONDS_PER_TARGET] [TARGET...]
#   SECONDS_PER_TARGET defaults to 5; with no TARGET, every target runs.
# Environment:
#   FUZZ_JOBS         targets run at once (default: the number of CPUs)
#   FUZZ_TARGET_DIR   build directory (default: fuzz/target)
#   FUZZ_PROFILE      cargo profile (default: fuzz-ci, see fuzz/Cargo.toml)
# New corpus entries go to a temporary directory, so the work tree stays
# clean. A crash, leak, timeout or out-of-memory fails the run, names the
# target, prints the input (hex) and keeps it under fuzz/artifacts/<target>/
# (git-ignored).
set -euo pipefail

seconds="${1:-5}"
shift || true
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
    echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fuzz_dir="$root/fuzz"
jobs="${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}"
profile="${FUZZ_PROFILE:-fuzz-ci}"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$fuzz_dir/target}"

cd "$fuzz_dir"
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^hygeia-fuzz$')
fi
# Every target has a source file and seeds.
for target in "${targets[@]}"; do
    if [ ! -f "fuzz_targets/$target.rs" ]; then
        echo "fuzz-ci: no target $target (fuzz_targets/$target.rs)" >&2
        exit 2
    fi
    if [ -z "$(ls -A "seeds/$target" 2>/dev/null)" ]; then
        echo "fuzz-ci: $target has no seeds: add a few small inputs to fuzz/seeds/$target/" >&2
        exit 2
    fi
done
for source in fuzz_targets/*.rs; do
    name="$(basename "$source" .rs)"
    if ! grep -q "^name = \"$name\"$" Cargo.toml; then
        echo "fuzz-ci: fuzz_targets/$name.rs has no [[bin]] in fuzz/Cargo.toml" >&2
        exit 2
    fi
done

# As cargo-fuzz sets them (cargo-fuzz's `BuildOptions`), without
# -Zsanitizer. The explicit --target keeps these flags off build scripts and
# procedural macros.
host="$(rustc -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
-Cdebug-assertions -Coverflow-checks"
echo "fuzz-ci: building ${#targets[@]} targets (profile $profile, $host)" >&2
build_start=$SECONDS
bins=()
for target in "${targets[@]}"; do bins+=(--bin "$target"); done
cargo build --profile "$profile" --target "$host" "${bins[@]}" >&2
echo "fuzz-ci: built in $((SECONDS - build_start)) s" >&2
bin_dir="$CARGO_TARGET_DIR/$host/$profile"

work="$(mktemp -d "${TMPDIR:-/tmp}/hygeia-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# One target: a fresh corpus from the seeds, a bounded run, a verdict line
# in $work/<target>.result.
run_one() {
    local target="$1"
    local corpus="$work/corpus/$target" log="$work/$target.log"
    local artifacts="$fuzz_dir/artifacts/$target/"
    mkdir -p "$corpus" "$artifacts"
    cp -R "seeds/$target/." "$corpus/"
    local status=0
    "$bin_dir/$target" "$corpus" -max_total_time="$seconds" -timeout=25 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts" \
        >"$log" 2>&1 || status=$?
    # "#N INITED cov: C ft: F" after the seeds, "#N DONE cov: C ft: F" at
    # the end; pulses in between.
    local inited done_line
    inited="$(grep -E '^#[0-9]+[[:space:]]+INITED' "$log" | tail -n 1 || true)"
    done_line="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)"
    local stat_of='s/.*cov: \([0-9]*\) ft: \([0-9]*\).*/cov \1 ft \2/p'
    local from to runs
    from="$(sed -n "$stat_of" <<<"$inited")"
    to="$(sed -n "$stat_of" <<<"$done_line")"
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
    if [ "$status" -ne 0 ]; then
        echo "FAILED $target" >"$work/$target.result"
    elif [ -z "$to" ] || [[ "$to" == "cov 0 "* ]]; then
        # libFuzzer saw no coverage counters: not instrumented.
        echo "FAILED $target (no coverage: not instrumented?)" >"$work/$target.result"
        status=1
    else
        echo "ok     $target  ${runs:-?} runs; seeds: ${from:-?}; end: $to" >"$work/$target.result"
    fi
    return "$status"
}

echo "fuzz-ci: running each target for ${seconds}s, $jobs at a time" >&2
run_start=$SECONDS
for target in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
        wait -n || true
    done
    run_one "$target" &
done
wait || true

echo
failed=()
for target in "${targets[@]}"; do
    result="$(cat "$work/$target.result" 2>/dev/null || echo "FAILED $target (no result)")"
    echo "$result"
    if [[ "$result" == FAILED* ]]; then
        failed+=("$target")
    fi
done
for target in "${failed[@]}"; do
    log="$work/$target.log"
    echo "---- fuzz target $target failed ----" >&2
    # The panic or libFuzzer's own message, the frames outside std and
    # libFuzzer, then the input that did it.
    if ! grep -A 3 -E "panicked at" "$log" >&2; then
        grep -A 12 -E "ERROR: libFuzzer|==[0-9]+== ERROR|no interesting inputs" "$log" >&2 \
            || tail -n 40 "$log" >&2
    fi
    grep -E "^ +#[0-9]+ " "$log" \
        | grep -v -E "/rustc/|libfuzzer|compiler-rt|\(/lib/|csu/|nptl/|sysdeps/|stdlib/" \
        | head -n 15 >&2 || true
    input="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)"
    if [ -n "$input" ] && [ -f "$input" ]; then
        echo "fuzz-ci: $target input ($(wc -c <"$input") bytes) kept at $input:" >&2
        od -A d -t x1 -v "$input" | head -n 64 >&2
        echo "replay: scripts/fuzz-ci.sh builds it; run $bin_dir/$target $input" >&2
    fi
done
passed=$(( ${#targets[@]} - ${#failed[@]} ))
echo "fuzz-ci: $passed passed, ${#failed[@]} failed; ran in $((SECONDS - run_start)) s"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz-ci: failing targets: ${failed[*]}" >&2
    exit 1
fi

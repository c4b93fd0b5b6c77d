#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a short while, starting from the
# seeds in fuzz/seeds/<target>/. New corpus entries go to a temporary
# directory, so the work tree stays clean; crash inputs are kept under
# fuzz/artifacts/<target>/ (git-ignored).
#
# Usage: scripts/fuzz-smoke.sh [SECONDS_PER_TARGET] [TARGET...]
#   SECONDS_PER_TARGET defaults to 30; with no TARGET, every target runs.
#   FUZZ_TOOLCHAIN selects the nightly toolchain (default: nightly).
# Exits non-zero if any target crashes, leaks, times out or fails to build.
set -euo pipefail

seconds="${1:-30}"
shift || true
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
    echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi
toolchain="${FUZZ_TOOLCHAIN:-nightly}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fuzz_dir="$root/fuzz"

if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
    echo "fuzz-smoke: the '$toolchain' toolchain is needed (cargo fuzz uses -Z flags)" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

cd "$fuzz_dir"
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo "+$toolchain" fuzz list)
fi

echo "fuzz-smoke: building ${#targets[@]} targets" >&2
cargo "+$toolchain" fuzz build >&2

work="$(mktemp -d "${TMPDIR:-/tmp}/hygeia-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT

failed=()
summary=()
for target in "${targets[@]}"; do
    corpus="$work/corpus/$target"
    mkdir -p "$corpus"
    if [ -d "seeds/$target" ]; then
        cp -R "seeds/$target/." "$corpus/"
    fi
    log="$work/$target.log"
    echo "fuzz-smoke: $target for ${seconds}s" >&2
    if cargo "+$toolchain" fuzz run "$target" "$corpus" -- \
        -max_total_time="$seconds" -timeout=25 -print_final_stats=1 >"$log" 2>&1; then
        stats="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)"
        summary+=("ok     $target  ${stats:-(no stats)}")
    else
        failed+=("$target")
        summary+=("FAILED $target  (see fuzz/artifacts/$target/)")
        echo "---- $target failed ----" >&2
        # The panic or sanitizer message, the stack frames outside std,
        # libFuzzer and libc, and where the crash input was written.
        if ! grep -A 3 -E "panicked at" "$log" >&2; then
            grep -A 12 -E "ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)" "$log" >&2 \
                || tail -n 40 "$log" >&2
        fi
        grep -E "^ +#[0-9]+ " "$log" \
            | grep -v -E "/rustc/|/libfuzzer-sys-|compiler-rt|\(/lib/|csu/|nptl/|sysdeps/|stdlib/" \
            | head -n 15 >&2 || true
        grep -E "Test unit written" "$log" >&2 || true
    fi
done

echo
printf '%s\n' "${summary[@]}"
passed=$(( ${#targets[@]} - ${#failed[@]} ))
echo "fuzz-smoke: $passed passed, ${#failed[@]} failed"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz-smoke: failing targets: ${failed[*]}" >&2
    exit 1
fi

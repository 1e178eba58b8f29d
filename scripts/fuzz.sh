#!/usr/bin/env bash
# Runs every cargo-fuzz target of the workspace for a bounded time (FUZZ_SECONDS each, default
# 20). A crash, hang or memory blow-up fails the run; the input stays under the crate's
# fuzz/artifacts/.
#
#   scripts/fuzz.sh                 # all targets
#   scripts/fuzz.sh services/search # the targets of one crate
#
# cargo-fuzz needs nightly features; on the stable toolchain RUSTC_BOOTSTRAP=1 unlocks them.
# The sanitizer is off (the fuzzed code is safe Rust: panics, hangs and unbounded memory are
# what is looked for) and every crate shares one target directory, which keeps builds short.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
seconds=${FUZZ_SECONDS:-20}
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="$here/target/fuzz"

if ! command -v cargo-fuzz >/dev/null; then
  echo "fuzz: installing cargo-fuzz"
  cargo install --locked --quiet cargo-fuzz@0.13.2
fi

crates=("$@")
if [ ${#crates[@]} -eq 0 ]; then
  mapfile -t crates < <(cd "$here" && find . -path ./target -prune -o -type d -name fuzz -print \
    | sed 's#^\./##; s#/fuzz$##' | sort)
fi

logs="$CARGO_TARGET_DIR/logs"
mkdir -p "$logs"
failed=()
for crate in "${crates[@]}"; do
  for target_file in "$here/$crate"/fuzz/fuzz_targets/*.rs; do
    target=$(basename "$target_file" .rs)
    log="$logs/${crate//\//_}-$target.log"
    started=$SECONDS
    if (cd "$here/$crate" && cargo fuzz run -s none "$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1) \
        >"$log" 2>&1; then
      runs=$(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
      echo "fuzz: $crate $target: ok, $runs inputs ($((SECONDS - started))s with build)"
    else
      echo "fuzz: $crate $target: FAILED ($log)"
      tail -n 40 "$log"
      failed+=("$crate/$target")
    fi
  done
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi

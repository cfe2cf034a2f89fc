#!/usr/bin/env bash
# Fuzz smoke test for CI: build every cargo-fuzz target and run each for
# ${FUZZ_SECONDS:-60} seconds, one at a time, from seed ${FUZZ_SEED:-1}.
# Fails if any target crashes (libFuzzer exits non-zero and leaves an
# artifact in fuzz/artifacts/).
#
# Uses nightly when installed, else stable with RUSTC_BOOTSTRAP=1
# (cargo-fuzz needs -Zsanitizer). Installs cargo-fuzz if it is missing.
# A crash found here belongs in fixtures/regressions/crash-<target>-<hash>
# (replayed by `cargo test --test integration -- regressions`).
set -euo pipefail

cd "$(dirname "$0")/../fuzz"
secs="${FUZZ_SECONDS:-60}"
# A fixed seed makes a CI failure reproducible here with the same command
# (FUZZ_SEED=random for a fresh one each run, as exploratory fuzzing wants).
seed="${FUZZ_SEED:-1}"
seed_arg=()
[ "$seed" = random ] || seed_arg=(-seed="$seed")
targets=(parse prologue block launch_list round_trip scheduler_ops stream_chunks session_bytes http_range http_multipart osd refresh rtsp_frame bundle client_records http_head dsft sign_text msi)

if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    tc=+nightly
else
    tc=+stable
    export RUSTC_BOOTSTRAP=1
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# LeakSanitizer's exit-time check, not only libFuzzer's per-input one, must
# be off: the writer's scoped worker threads leave thread-local handles that
# LSan reports at exit (a false positive that once failed CI on an empty
# input after a clean 60 s run).
export ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

cargo "$tc" fuzz build

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
crashed=()
for t in "${targets[@]}"; do
    mkdir -p "$work/$t"
    echo "== fuzzing $t for ${secs}s"
    # New inputs go to the scratch dir; committed seeds stay untouched.
    # Leak detection is off: worker threads' TLS destructors look like leaks.
    # libFuzzer's progress lines go to a log: only a crash's report is
    # printed, so CI's tail shows what failed rather than the last
    # target's dictionary.
    if cargo "$tc" fuzz run "$t" "$work/$t" "corpus/$t" -- \
        -max_total_time="$secs" -detect_leaks=0 -rss_limit_mb=2048 -print_final_stats=1 "${seed_arg[@]}" \
        > "$work/$t.log" 2>&1; then
        grep -E '^(Done|stat::number_of_executed_units)' "$work/$t.log" || true
    else
        echo "!! $t crashed; its report:" >&2
        grep -v -E '^#[0-9]+' "$work/$t.log" | tail -n 60 >&2
        crashed+=("$t")
    fi
done
if [ ${#crashed[@]} -gt 0 ]; then
    echo "!! fuzz smoke: ${#crashed[@]} target(s) crashed: ${crashed[*]}" >&2
    for t in "${crashed[@]}"; do
        for a in artifacts/"$t"/*; do
            [ -f "$a" ] || continue
            echo "!! $t reproducer $a ($(stat -c %s "$a") bytes), base64:" >&2
            head -c 4096 "$a" | base64 -w 0 >&2
            echo >&2
        done
    done
    exit 1
fi
echo "fuzz smoke: all ${#targets[@]} targets ran ${secs}s without a crash"

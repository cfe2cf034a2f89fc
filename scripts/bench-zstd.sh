#!/usr/bin/env bash
# bench-zstd: codec 2 (zstd) against zlib and against squashfs, on a real
# tree (the OpenJDK 17 JRE of Debian's openjdk-17-jre-headless 17.0.21.1,
# as scripts/bench-delta.sh fetches it).
#
#   size:     sft pack --compression zstd (level 19) vs mksquashfs -comp gzip
#             (its default 128 KiB blocks) and vs sft's zlib 6, 64 KiB blocks
#   extract:  sft extract of the zstd package vs of the zlib package (page
#             cache warm, output on the same file system), median of RUNS
#             with the min-max spread, as a ratio
#
# Usage: scripts/bench-zstd.sh [TREE]     (RUNS=5 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
command -v mksquashfs >/dev/null || { echo "bench-zstd: mksquashfs (squashfs-tools) is not installed" >&2; exit 2; }
cargo build --release --features cli -q
SFT=${CARGO_TARGET_DIR:-target}/release/sft
W=$(mktemp -d /tmp/bench-zstd.XXXXXX)
trap 'rm -rf "$W"' EXIT
TREE=${1:-}
if [ -z "$TREE" ]; then
  V='17.0.21.1+2-1~deb12u1'
  DEBS=${DEBS:-/work/bench}
  mkdir -p "$DEBS"
  ls "$DEBS"/openjdk-17-jre-headless_"$V"_amd64.deb >/dev/null 2>&1 ||
    (cd "$DEBS" && apt-get download "openjdk-17-jre-headless=$V" >/dev/null 2>&1)
  TREE="$W/tree"
  mkdir -p "$TREE"
  dpkg-deb -x "$DEBS"/openjdk-17-jre-headless_"$V"_amd64.deb "$TREE"
  find "$TREE" -type l -delete
fi
echo "tree: $TREE, $(du -sb "$TREE" | cut -f1) bytes, $(find "$TREE" -type f | wc -l) files"
"$SFT" pack "$TREE" -o "$W/zlib.sft" > /dev/null
"$SFT" pack "$TREE" -o "$W/zstd.sft" --compression zstd > /dev/null
mksquashfs "$TREE" "$W/gzip.squashfs" -comp gzip -noappend -no-progress -quiet > /dev/null
size() { stat -c %s "$1"; }
echo
echo "sizes:"
printf '  %-34s %12s\n' "sft zlib 6 (64 KiB blocks)" "$(size "$W/zlib.sft")"
printf '  %-34s %12s\n' "sft zstd 19 (64 KiB blocks)" "$(size "$W/zstd.sft")"
printf '  %-34s %12s\n' "mksquashfs -comp gzip (128 KiB)" "$(size "$W/gzip.squashfs")"
python3 -c "import sys; z,s=int(sys.argv[1]),int(sys.argv[2]); print(f'  zstd / squashfs-gzip: {z/s:.3f}')" "$(size "$W/zstd.sft")" "$(size "$W/gzip.squashfs")"

timed() { python3 -c '
import subprocess, sys, time
t0 = time.perf_counter()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(f"{time.perf_counter() - t0:.4f}")' "$@"; }
Z=(); S=()
for _ in $(seq "$RUNS"); do
  rm -rf "$W/out"; Z+=("$(timed "$SFT" extract "$W/zlib.sft" "$W/out")")
  rm -rf "$W/out"; S+=("$(timed "$SFT" extract "$W/zstd.sft" "$W/out")")
done
python3 - "$RUNS" "${Z[@]}" "${S[@]}" <<'PY'
import statistics, sys
n = int(sys.argv[1]); z = [float(x) for x in sys.argv[2:2+n]]; s = [float(x) for x in sys.argv[2+n:]]
print()
print(f"extract, median of {n} (min-max):")
print(f"  zlib  {statistics.median(z):.3f} s ({min(z):.3f}-{max(z):.3f})")
print(f"  zstd  {statistics.median(s):.3f} s ({min(s):.3f}-{max(s):.3f})")
print(f"  zlib / zstd: {statistics.median(z)/statistics.median(s):.2f}x (spread {min(z)/max(s):.2f}-{max(z)/min(s):.2f})")
PY

#!/usr/bin/env bash
# bench-msi: Windows Installer files of a real package (the OpenJDK 17 JRE
# of Debian's openjdk-17-jre-headless 17.0.21.1, as scripts/bench-delta.sh
# fetches it), sft against msitools on the same files in the same run.
#
#   build:    sft msi --with-sft  vs  wixl of a WiX source with the same
#             files (manifest, OSD, SFT)
#   read:     sft client install of sft's MSI (strict CFB and table checks,
#             every file against its BLAKE3, the SFT verified in full,
#             then added and published)  vs  msiextract -C of the same MSI
#             (extraction only)
#   size:     sft's MSI (SFT stored: its blocks are compressed already) vs
#             wixl's (MSZIP over everything)
#
# Medians of RUNS (min-max), page cache warm, outputs on the same file
# system, reported as ratios. Usage: scripts/bench-msi.sh [TREE] (RUNS=5)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
for t in wixl msiextract; do
  command -v "$t" >/dev/null || { echo "bench-msi: $t is not installed (apt-get install msitools wixl)" >&2; exit 2; }
done
cargo build --release --features cli -q
SFT=$(pwd)/${CARGO_TARGET_DIR:-target}/release/sft
[ -x "$SFT" ] || SFT=${CARGO_TARGET_DIR:-target}/release/sft
W=$(mktemp -d /tmp/bench-msi.XXXXXX)
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
APP=$(cd "$TREE" && find . -type f -name java | head -1 | sed 's|^\./||')
mkdir -p "$W/pub"
"$SFT" pack "$TREE" -o "$W/pub/Jre.sft" --name Jre --publish "$W/pub" --app "Jre=$APP" \
  --href '%SFT_MIME_SOURCE%/Jre.sft' > /dev/null
echo "package: $(stat -c %s "$W/pub/Jre.sft") bytes (zlib, 64 KiB blocks)"
# The WiX source: the same three files, as sft's MSI has them.
cat > "$W/pub/w.wxs" <<WXS
<?xml version="1.0" encoding="utf-8"?>
<Wix xmlns="http://schemas.microsoft.com/wix/2006/wi">
  <Product Id="*" Name="Jre" Language="1033" Version="0.0.1" Manufacturer="bench" UpgradeCode="12345678-1234-1234-1234-123456789012">
    <Package InstallerVersion="200" Compressed="yes" InstallScope="perMachine"/>
    <Media Id="1" Cabinet="w.cab" EmbedCab="yes"/>
    <Directory Id="TARGETDIR" Name="SourceDir"><Directory Id="ProgramFilesFolder"><Directory Id="INSTALLDIR" Name="Jre">
      <Component Id="C0" Guid="11111111-2222-3333-4444-000000000000">
        <File Id="F0" Source="Jre_manifest.xml" Name="Jre_manifest.xml"/>
        <File Id="F1" Source="Jre.osd" Name="Jre.osd"/>
        <File Id="F2" Source="Jre.sft" Name="Jre.sft"/>
      </Component>
    </Directory></Directory></Directory>
    <Feature Id="Main" Level="1"><ComponentRef Id="C0"/></Feature>
  </Product>
</Wix>
WXS
timed() { python3 -c '
import subprocess, sys, time
t0 = time.perf_counter()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(f"{time.perf_counter() - t0:.4f}")' "$@"; }
B_SFT=(); B_WIXL=(); R_SFT=(); R_X=(); R_XV=()
for _ in $(seq "$RUNS"); do
  rm -f "$W/sft.msi"; B_SFT+=("$(timed "$SFT" msi --manifest "$W/pub/Jre_manifest.xml" --with-sft -o "$W/sft.msi")")
  rm -f "$W/wixl.msi"; B_WIXL+=("$(cd "$W/pub" && timed wixl -o "$W/wixl.msi" w.wxs)")
  rm -rf "$W/store"; R_SFT+=("$(timed "$SFT" client --store "$W/store" install "$W/sft.msi")")
  rm -rf "$W/x"; R_X+=("$(timed msiextract -C "$W/x" "$W/sft.msi")")
  # The same guarantee as an install: extracted, then every block checked.
  rm -rf "$W/x"; R_XV+=("$(timed sh -c 'msiextract -C "$1" "$2" && "$3" verify "$1/Program Files/sft/Jre/Jre.sft"' sh "$W/x" "$W/sft.msi" "$SFT")")
done
cmp "$W/x/Program Files/sft/Jre/Jre.sft" "$W/pub/Jre.sft"
"$SFT" client --store "$W/store" query packages | grep -q 'Jre'
python3 - "$RUNS" "$(stat -c %s "$W/sft.msi")" "$(stat -c %s "$W/wixl.msi")" \
  "${B_SFT[@]}" "${B_WIXL[@]}" "${R_SFT[@]}" "${R_X[@]}" "${R_XV[@]}" <<'PY'
import statistics, sys
n = int(sys.argv[1]); ours, theirs = int(sys.argv[2]), int(sys.argv[3])
v = [float(x) for x in sys.argv[4:]]
bs, bw, rs, rx, rxv = v[:n], v[n:2*n], v[2*n:3*n], v[3*n:4*n], v[4*n:]
med = statistics.median
def show(name, xs):
    print(f"  {name:<40} {med(xs):7.3f} s ({min(xs):.3f}-{max(xs):.3f})")
print()
print(f"sizes: sft {ours} bytes, wixl {theirs} bytes (sft / wixl {ours/theirs:.3f})")
print(f"build, median of {n} (min-max):")
show("sft msi --with-sft", bs)
show("wixl (same files)", bw)
print(f"  wixl / sft: {med(bw)/med(bs):.2f}x (spread {min(bw)/max(bs):.2f}-{max(bw)/min(bs):.2f})")
print(f"read, median of {n} (min-max):")
show("sft client install (checks + verify)", rs)
show("msiextract -C (extract only)", rx)
show("msiextract -C + sft verify (same checks)", rxv)
print(f"  msiextract / sft install: {med(rx)/med(rs):.2f}x (spread {min(rx)/max(rs):.2f}-{max(rx)/min(rs):.2f})")
print(f"  (msiextract + verify) / sft install: {med(rxv)/med(rs):.2f}x (spread {min(rxv)/max(rs):.2f}-{max(rxv)/min(rs):.2f})")
PY

#!/usr/bin/env bash
# Compare `sft` with its peers on one directory tree, in one run.
#
#   scripts/bench-vs-peers.sh [--quick] [DIR]
#
# Packs and extracts the same copy of DIR with
#   sft pack --level 6 / sft extract         (release build, features `cli`)
#   zip -6 -r / unzip -q
#   tar -czf / tar -xzf                  (gzip's default level, 6)
#   mksquashfs -comp gzip / unsquashfs   (squashfs-tools; gzip level 9 by default)
# and reads a stored sft package (`--compression none`) through the reader
# (examples/read_all.rs) against `cat PKG > /dev/null`; then times opening
# a 10-file against a 100,000-file package (examples/open_cost.rs).
#
# DIR defaults to the Python 3.11 standard library. It is copied first
# (`cp -rL`: symlinks are followed, so their contents count; anything left
# that is neither a regular file nor a directory is dropped, since
# `sft pack` refuses symlinks and special files); every tool works on that
# same copy. Page caches cannot be dropped here, so the copy is read once
# before timing (warm cache for everyone) and each timed command runs RUNS
# times, each after an untimed `sync` (so no run pays for the previous
# run's writeback); ratios use the best (minimum) time, the median is
# shown too. Each extraction goes to a new directory (none is deleted
# before the end). Outputs go to the page cache: no tool's time includes
# writing them to disk, except the fsync that `sft pack` does itself.
#
# Environment:
#   RUNS=3        timed runs per command (--quick: 1)
#   READ_RUNS=7   timed runs of the read comparison (--quick: 1)
#   LEVEL=6       compression level for sft and zip
#   WORKDIR=...   scratch directory (default: a new one under /tmp)
#   KEEP=1        keep the scratch directory
#   SKIP="..."    peers to skip: any of zip tar squashfs read open
#   NO_BUILD=1    do not run cargo build (binaries must exist)
#
# --quick: CI smoke. Without DIR packs this repository's src/ tree; one
# run of everything; target ratios are printed but not judged.
#
# Exits non-zero only on errors (a tool failing, or sft's output not
# matching its input); a missed target is reported as FAIL, not an error.

set -euo pipefail

QUICK=0
SRC=""
for arg in "$@"; do
	case "$arg" in
	--quick) QUICK=1 ;;
	-h | --help)
		sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	-*)
		echo "unknown option $arg" >&2
		exit 2
		;;
	*) SRC="$arg" ;;
	esac
done

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "$SRC" ]]; then
	if [[ $QUICK == 1 ]]; then
		SRC="$REPO/src"
	else
		SRC="/root/.pyenv/versions/3.11.7/lib/python3.11"
	fi
fi
[[ -d "$SRC" ]] || {
	echo "error: $SRC is not a directory" >&2
	exit 2
}
if [[ $QUICK == 1 ]]; then
	RUNS="${RUNS:-1}"
	READ_RUNS="${READ_RUNS:-1}"
else
	RUNS="${RUNS:-3}"
	READ_RUNS="${READ_RUNS:-7}"
fi
LEVEL="${LEVEL:-6}"
SKIP="${SKIP:-}"

skipped() { [[ " $SKIP " == *" $1 "* ]]; }
note() { printf '%s\n' "$*" >&2; }
die() {
	note "error: $*"
	exit 1
}

# --- build ------------------------------------------------------------------
TARGET_DIR="${CARGO_TARGET_DIR:-}"
if [[ -z "$TARGET_DIR" ]]; then
	TARGET_DIR="$(cd "$REPO" && cargo metadata --format-version 1 --no-deps |
		grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)"
fi
if [[ "${NO_BUILD:-0}" != 1 ]]; then
	note "building: cargo build --release --features cli --bins --examples"
	(cd "$REPO" && cargo build --quiet --release --features cli --bins --examples) ||
		die "cargo build failed"
fi
SFT="$TARGET_DIR/release/sft"
READ_ALL="$TARGET_DIR/release/examples/read_all"
OPEN_COST="$TARGET_DIR/release/examples/open_cost"
for b in "$SFT" "$READ_ALL" "$OPEN_COST"; do
	[[ -x "$b" ]] || die "$b is missing (build with --features cli --examples)"
done

# --- scratch and tree copy ----------------------------------------------------
WORK="${WORKDIR:-$(mktemp -d /tmp/sft-bench.XXXXXX)}"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
cleanup() {
	if [[ "${KEEP:-0}" == 1 ]]; then
		note "scratch kept in $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT

TREE="$WORK/tree"
rm -rf "$TREE"
note "copying $SRC -> $TREE"
if ! cp -rL --preserve=mode,timestamps "$SRC" "$TREE" 2>"$WORK/cp.err"; then
	note "warning: cp reported problems (dangling symlinks?); first lines:"
	head -5 "$WORK/cp.err" >&2
fi
dropped=$(find "$TREE" ! -type f ! -type d -print -delete | wc -l)
FILES=$(find "$TREE" -type f | wc -l)
DIRS=$(find "$TREE" -type d | wc -l)
BYTES=$(find "$TREE" -type f -printf '%s\n' | awk '{s += $1} END {printf "%d", s}')

# Warm the page cache: everyone starts with the tree in memory.
find "$TREE" -type f -print0 | xargs -0 cat >/dev/null

# --- timing helpers -----------------------------------------------------------
# Times are kept in microseconds, in associative arrays by label.
declare -A BEST MEDIAN ALL SIZE
now_us() { echo $(($(date +%s%N) / 1000)); }

# bench LABEL PREP CMD: run PREP (untimed) then CMD (timed), RUNS times.
bench() {
	local label="$1" prep="$2" cmd="$3" runs="${4:-$RUNS}" t0 t1 i times=()
	for ((i = 0; i < runs; i++)); do
		OUT="$X/$label.$i" # a fresh output directory for every run
		eval "$prep"
		# Flush dirty pages so no run pays for another's writeback.
		sync
		t0=$(now_us)
		if ! eval "$cmd"; then
			die "$label failed: $cmd"
		fi
		t1=$(now_us)
		times+=($((t1 - t0)))
	done
	record "$label" "${times[@]}"
}

record() {
	local label="$1"
	shift
	local sorted
	sorted=($(printf '%s\n' "$@" | sort -n))
	BEST[$label]=${sorted[0]}
	MEDIAN[$label]=${sorted[$((${#sorted[@]} / 2))]}
	ALL[$label]="$(printf '%s ' "$@" | awk '{for (i = 1; i <= NF; i++) printf "%s%.3f", (i > 1 ? " " : ""), $i / 1e6}')"
}

secs() { awk -v u="$1" 'BEGIN {printf "%.3f", u / 1e6}'; }
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b == 0) print "inf"; else printf "%.2f", a / b}'; }
# judge VALUE OP LIMIT -> PASS/FAIL (or "info" in quick mode)
judge() {
	if [[ $QUICK == 1 ]]; then
		echo "info (quick)"
	elif awk -v v="$1" -v l="$3" "BEGIN {exit !(v $2 l)}"; then
		echo PASS
	else
		echo FAIL
	fi
}
size_of() { stat -c %s "$1"; }
have() { command -v "$1" >/dev/null 2>&1; }

# --- the runs -----------------------------------------------------------------
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
PEERS=(sft)
# Extraction targets: a new directory per run, all deleted at the end.
# (Deleting a tree just before extracting slows inode allocation on ext4,
# which avoids reusing recently deleted inodes: runs after `rm -rf` were
# 2-4x slower than the first, for every tool.)
X="$WORK/x"
mkdir -p "$X"

# sft
PKG="$WORK/tree.sft"
bench sft_pack "rm -f '$PKG'" "'$SFT' pack --level $LEVEL -o '$PKG' '$TREE' >/dev/null"
SIZE[sft]=$(size_of "$PKG")
bench sft_extract ":" "'$SFT' extract '$PKG' \"\$OUT\" >/dev/null"
# Correctness (untimed): the extracted tree must equal the input.
diff -r "$TREE" "$X/sft_extract.0" >"$WORK/diff.out" 2>&1 ||
	die "sft extract output differs from the input: $(head -3 "$WORK/diff.out")"

# zip / unzip
if skipped zip; then
	note "skipping zip (SKIP)"
elif ! have zip || ! have unzip; then
	note "skipping zip: zip/unzip not installed (apt-get install -y zip unzip)"
else
	PEERS+=(zip)
	Z="$WORK/tree.zip"
	bench zip_pack "rm -f '$Z'" "(cd '$WORK' && zip -q -$LEVEL -r '$Z' tree)"
	SIZE[zip]=$(size_of "$Z")
	bench zip_extract ":" "unzip -q '$Z' -d \"\$OUT\""
	rm -f "$Z"
fi

# tar + gzip
if skipped tar; then
	note "skipping tar (SKIP)"
elif ! have tar || ! have gzip; then
	note "skipping tar: tar/gzip not installed"
else
	PEERS+=(tar)
	T="$WORK/tree.tar.gz"
	bench tar_pack "rm -f '$T'" "tar -czf '$T' -C '$WORK' tree"
	SIZE[tar]=$(size_of "$T")
	bench tar_extract "mkdir -p \"\$OUT\"" "tar -xzf '$T' -C \"\$OUT\""
	rm -f "$T"
fi

# squashfs
if skipped squashfs; then
	note "skipping squashfs (SKIP)"
elif ! have mksquashfs || ! have unsquashfs; then
	note "skipping squashfs: not installed (apt-get install -y squashfs-tools)"
else
	PEERS+=(squashfs)
	S="$WORK/tree.sqfs"
	bench squashfs_pack "rm -f '$S'" \
		"mksquashfs '$TREE' '$S' -comp gzip -noappend -quiet -no-progress >/dev/null"
	SIZE[squashfs]=$(size_of "$S")
	bench squashfs_extract ":" "unsquashfs -q -n -d \"\$OUT\" '$S' >/dev/null"
	rm -f "$S"
fi
rm -f "$PKG"

# Reading a stored package: the reader against cat, interleaved.
READ_DONE=0
if skipped read; then
	note "skipping read comparison (SKIP)"
else
	STORED="$WORK/stored.sft"
	"$SFT" pack --compression none -o "$STORED" "$TREE" >/dev/null ||
		die "sft pack --compression none failed"
	SIZE[stored]=$(size_of "$STORED")
	got=$("$READ_ALL" "$STORED" | wc -c)
	[[ "$got" == "$BYTES" ]] || die "read_all streamed $got bytes, the tree has $BYTES"
	cat "$STORED" >/dev/null # warm
	cat_t=() read_t=() touch_t=() blocks_t=() perfile_t=()
	for ((i = 0; i < READ_RUNS; i++)); do
		t0=$(now_us)
		cat "$STORED" >/dev/null
		t1=$(now_us)
		"$READ_ALL" "$STORED" >/dev/null
		t2=$(now_us)
		"$READ_ALL" --sink touch "$STORED"
		t3=$(now_us)
		"$READ_ALL" --mode blocks "$STORED" >/dev/null
		t4=$(now_us)
		"$READ_ALL" --mode chunks-per-file "$STORED" >/dev/null
		t5=$(now_us)
		perfile_t+=($((t5 - t4)))
		cat_t+=($((t1 - t0)))
		read_t+=($((t2 - t1)))
		touch_t+=($((t3 - t2)))
		blocks_t+=($((t4 - t3)))
	done
	record cat "${cat_t[@]}"
	record read_all "${read_t[@]}"
	record read_all_touch "${touch_t[@]}"
	record read_all_blocks "${blocks_t[@]}"
	record read_all_per_file "${perfile_t[@]}"
	"$READ_ALL" -v --sink touch "$STORED" 2>&1 | sed -n 1p >"$WORK/visits.out"
	rm -f "$STORED"
	READ_DONE=1
fi

OPEN_DONE=0
if skipped open; then
	note "skipping open cost (SKIP)"
else
	"$OPEN_COST" >"$WORK/open_cost.out" || die "open_cost failed"
	OPEN_PARSE=$(sed -n 's/^ratio_parse=//p' "$WORK/open_cost.out")
	OPEN_MMAP=$(sed -n 's/^ratio_mmap_open=//p' "$WORK/open_cost.out")
	OPEN_SAME=$(sed -n 's/^ratio_mmap_open_same_size=//p' "$WORK/open_cost.out")
	OPEN_DONE=1
fi
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

# --- report -------------------------------------------------------------------
echo "# sft vs peers"
echo
echo "date:     $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine:  $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), $(uname -sr)"
echo "load:     $load_before before, $load_after after (1/5/15 min)"
echo "tree:     $SRC"
echo "          copied to $TREE: $FILES files, $DIRS directories, $BYTES bytes ($(mib "$BYTES") MiB); $dropped non-regular entries dropped"
echo "runs:     $RUNS per command (read comparison: $READ_RUNS), warm page cache, sync before each run; best time used, median shown"
echo "sft:      $("$SFT" --version 2>/dev/null || echo sft), pack --level $LEVEL"
echo "peers:    $(zip -v 2>/dev/null | sed -n 2p | sed 's/^This is //; s/, by.*//'); $(unzip -v 2>/dev/null | head -1 | cut -d' ' -f1-2); $(tar --version | head -1); $(mksquashfs -version 2>/dev/null | head -1 | cut -d' ' -f1-3)"
echo
printf '%-10s %10s %10s %12s %10s %10s %12s %12s %10s\n' \
	tool "pack s" "pack med" "size MiB" "ratio" "extract s" "extract med" "pack×sft" "extr×sft"
for p in "${PEERS[@]}"; do
	printf '%-10s %10s %10s %12s %10s %10s %12s %12s %10s\n' "$p" \
		"$(secs "${BEST[${p}_pack]}")" "$(secs "${MEDIAN[${p}_pack]}")" \
		"$(mib "${SIZE[$p]}")" "$(ratio "$BYTES" "${SIZE[$p]}")" \
		"$(secs "${BEST[${p}_extract]}")" "$(secs "${MEDIAN[${p}_extract]}")" \
		"$(ratio "${BEST[${p}_pack]}" "${BEST[sft_pack]}")" \
		"$(ratio "${BEST[${p}_extract]}" "${BEST[sft_extract]}")"
done
echo
echo "(ratio = input bytes / output bytes; pack×sft and extr×sft = the tool's time / sft's time, >1 means sft is faster)"
echo
echo "all runs (s):"
for k in $(printf '%s\n' "${!ALL[@]}" | sort); do
	printf '  %-18s %s\n' "$k" "${ALL[$k]}"
done
echo
echo "## targets"
if [[ -n "${BEST[zip_pack]:-}" ]]; then
	sp=$(ratio "${BEST[zip_pack]}" "${BEST[sft_pack]}")
	sz=$(ratio "${SIZE[sft]}" "${SIZE[zip]}")
	ex=$(ratio "${BEST[zip_extract]}" "${BEST[sft_extract]}")
	echo "pack speed     zip -$LEVEL time / sft pack time   = $sp  (>= 2.00)  $(judge "$sp" '>=' 2)"
	echo "pack size      sft size / zip size            = $sz  (<= 1.05)  $(judge "$sz" '<=' 1.05)"
	echo "extract speed  unzip time / sft extract time  = $ex  (>= 1.50)  $(judge "$ex" '>=' 1.5)"
else
	echo "pack/extract vs zip: not measured (zip skipped)"
fi
if [[ $READ_DONE == 1 ]]; then
	# Throughput: cat moves the whole package, read_all the file data.
	cat_bps=$(awk -v b="${SIZE[stored]}" -v t="${BEST[cat]}" 'BEGIN {printf "%.0f", b / t * 1e6}')
	rd_bps=$(awk -v b="$BYTES" -v t="${BEST[read_all]}" 'BEGIN {printf "%.0f", b / t * 1e6}')
	to_bps=$(awk -v b="$BYTES" -v t="${BEST[read_all_touch]}" 'BEGIN {printf "%.0f", b / t * 1e6}')
	bl_bps=$(awk -v b="$BYTES" -v t="${BEST[read_all_blocks]}" 'BEGIN {printf "%.0f", b / t * 1e6}')
	pf_bps=$(awk -v b="$BYTES" -v t="${BEST[read_all_per_file]}" 'BEGIN {printf "%.0f", b / t * 1e6}')
	rr=$(ratio "$rd_bps" "$cat_bps")
	echo "read stored    read_all / cat throughput      = $rr  (>= 0.80)  $(judge "$rr" '>=' 0.8)"
	echo "               cat $(mib "$cat_bps") MiB/s over $(mib "${SIZE[stored]}") MiB in $(secs "${BEST[cat]}") s;" \
		"read_all (stdout) $(mib "$rd_bps") MiB/s in $(secs "${BEST[read_all]}") s;" \
		"read_all (touch) $(mib "$to_bps") MiB/s in $(secs "${BEST[read_all_touch]}") s"
	echo "               block-level calls, one cache (--mode blocks): $(mib "$bl_bps") MiB/s in" \
		"$(secs "${BEST[read_all_blocks]}") s, ratio $(ratio "$bl_bps" "$cat_bps")"
	echo "               a new Chunks per file (--mode chunks-per-file): $(mib "$pf_bps") MiB/s in" \
		"$(secs "${BEST[read_all_per_file]}") s, ratio $(ratio "$pf_bps" "$cat_bps")"
	sed 's/^read_all: /               /' "$WORK/visits.out"
fi
if [[ $OPEN_DONE == 1 ]]; then
	worst=$(awk -v a="$OPEN_PARSE" -v b="$OPEN_MMAP" 'BEGIN {print (a > b ? a : b)}')
	echo "open cost      100k-file / 10-file open time  = parse $OPEN_PARSE, mmap_open $OPEN_MMAP  (<= 2.00)  $(judge "$worst" '<=' 2)"
	echo "               (10 files padded to the 100k package's byte size: mmap_open ratio $OPEN_SAME)"
	sed 's/^/               /' "$WORK/open_cost.out" | grep -v ratio_
fi

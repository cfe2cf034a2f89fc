#!/usr/bin/env bash
# bench-delta: bytes moved by an upgrade, sft against zsync and casync, on
# two real versions of one real application (OpenJDK 17 JRE, Debian's
# 17.0.19 and 17.0.21.1 packages, fetched with `apt-get download`), all
# served by one nginx on 127.0.0.1 whose access log counts the bytes.
#
#   sft full     sft fetch URL/new.sft                       (no base)
#   sft delta    sft fetch URL/new.sft --base old.sft        (new packed --like old)
#   zsync        zsync -i old.sft URL/new.sft.zsync          (zsyncmake of new.sft)
#   casync       casync extract --seed=old/ URL/new.caidx    (store over HTTP)
#
# Also: a delta fetch's time against a full fetch on loopback (with an
# arbitrary base, whose copied blocks are decoded as fetched ones are, and
# with --base-checked, the client store's case), and the cost
# of signature and BLAKE3 checking: `sft fetch --trusted-key` of a signed
# v1.1 package against a CRC-only fetch of the same tree packed v1.0
# (--no-hashes). Times are medians of RUNS runs with their min-max spread.
#
# Usage: scripts/bench-delta.sh [--block-size 64k]   (RUNS=5 by default)
# Needs: nginx, zsync, casync, minisign (Debian packages), apt-get download.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
BS=64k
[ "${1:-}" = "--block-size" ] && BS=$2
for t in nginx zsync zsyncmake casync; do
  command -v $t >/dev/null || [ -x /usr/sbin/$t ] || { echo "bench-delta: $t is not installed" >&2; exit 2; }
done
export PATH="$PATH:/usr/sbin"
cargo build --release --features cli -q
SFT=${CARGO_TARGET_DIR:-target}/release/sft
W=$(mktemp -d /tmp/bench-delta.XXXXXX)
cleanup() { [ -n "${NGINX_PID:-}" ] && kill "$NGINX_PID" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT

# ------------------------------------------------------------- the two versions
OLD_V='17.0.19+10-1~deb12u2'
NEW_V='17.0.21.1+2-1~deb12u1'
DEBS=${DEBS:-/work/bench}
mkdir -p "$DEBS"
for v in "$OLD_V" "$NEW_V"; do
  ls "$DEBS"/openjdk-17-jre-headless_"${v//:/%3a}"_amd64.deb >/dev/null 2>&1 ||
    (cd "$DEBS" && apt-get download "openjdk-17-jre-headless=$v" >/dev/null 2>&1)
done
mkdir -p "$W/content" "$W/old" "$W/new"
dpkg-deb -x "$DEBS"/openjdk-17-jre-headless_"$OLD_V"_amd64.deb "$W/old"
dpkg-deb -x "$DEBS"/openjdk-17-jre-headless_"$NEW_V"_amd64.deb "$W/new"
# sft stores no symlinks (neither did App-V 4.x): both trees without them.
find "$W/old" "$W/new" -type l -delete
echo "trees: old $(du -sb "$W/old" | cut -f1) bytes, new $(du -sb "$W/new" | cut -f1) bytes ($(find "$W/new" -type f | wc -l) files)"

"$SFT" pack "$W/old" -o "$W/old.sft" --name jdk --block-size "$BS" > /dev/null
"$SFT" pack "$W/new" -o "$W/content/new.sft" --name jdk --like "$W/old.sft" > /dev/null
"$SFT" pack "$W/new" -o "$W/content/new-plain.sft" --name jdk --block-size "$BS" > /dev/null
"$SFT" pack "$W/new" -o "$W/content/new-v10.sft" --name jdk --like "$W/old.sft" --no-hashes > /dev/null
"$SFT" keygen -o "$W/key" > /dev/null
"$SFT" sign "$W/content/new.sft" --key "$W/key" > /dev/null
(cd "$W/content" && zsyncmake -u new.sft -o new.sft.zsync new.sft > /dev/null 2>&1)
casync make --store="$W/content/store" "$W/content/new.caidx" "$W/new" > /dev/null
chmod -R a+rX "$W"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
mkdir -p "$W/nginx"
cat > "$W/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log;
events { worker_connections 256; }
http {
  log_format bytes '\$body_bytes_sent \$request_uri';
  access_log $W/nginx/access.log bytes;
  sendfile on;
  client_body_temp_path $W/nginx/tmp;
  proxy_temp_path $W/nginx/tmp;
  fastcgi_temp_path $W/nginx/tmp;
  uwsgi_temp_path $W/nginx/tmp;
  scgi_temp_path $W/nginx/tmp;
  server { listen 127.0.0.1:$PORT; root $W/content; }
}
EOF
nginx -p "$W/nginx" -c "$W/nginx/nginx.conf" -g 'daemon off;' 2> "$W/nginx/stderr" &
NGINX_PID=$!
URL="http://127.0.0.1:$PORT"
for _ in $(seq 100); do curl -sf -o /dev/null -r 0-0 "$URL/new.sft" && break; sleep 0.05; done

# Bytes nginx sent for one command (the access log's body bytes).
moved() {
  : > "$W/nginx/access.log"
  kill -USR1 "$NGINX_PID"
  "$@" > "$W/cmd.out" 2>&1 || { cat "$W/cmd.out" >&2; exit 1; }
  sleep 0.3 # nginx writes its log line after the response
  awk '{ s += $1 } END { print s + 0 }' "$W/nginx/access.log"
}
fresh() { rm -rf "$W/out" "$W/out.sft" "$W/out.sft.partial" "$W/out.sft.partial.blocks"; }

fresh; FULL=$(moved "$SFT" fetch "$URL/new.sft" -o "$W/out.sft")
cmp "$W/out.sft" "$W/content/new.sft"
fresh; PLAN=$("$SFT" fetch "$URL/new.sft" -o "$W/out.sft" --base "$W/old.sft" --dry-run --json)
ANNOUNCED=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["transfer_bytes"])' "$PLAN")
fresh; DELTA=$(moved "$SFT" fetch "$URL/new.sft" -o "$W/out.sft" --base "$W/old.sft")
cmp "$W/out.sft" "$W/content/new.sft"
fresh; PLAIN=$(moved "$SFT" fetch "$URL/new-plain.sft" -o "$W/out.sft" --base "$W/old.sft")
fresh; ZSYNC=$(moved sh -c "cd '$W' && zsync -q -i '$W/old.sft' -o '$W/out.sft' '$URL/new.sft.zsync'")
cmp "$W/out.sft" "$W/content/new.sft"
fresh; CASYNC=$(moved casync extract --store="$URL/store" --seed="$W/old" "$URL/new.caidx" "$W/out")
diff -r "$W/out" "$W/new" > /dev/null

echo
echo "bytes moved for the upgrade (nginx access log, body bytes; block size $BS):"
printf '  %-38s %12s  %s\n' "sft full fetch" "$FULL" "1.00"
for row in "sft delta (new packed --like old):$DELTA" "sft delta (new packed plain):$PLAIN" "zsync (new.sft, old.sft as seed):$ZSYNC" "casync (tree, old tree as seed):$CASYNC"; do
  name=${row%%:*}; n=${row##*:}
  printf '  %-38s %12s  %s\n' "$name" "$n" "$(python3 -c "print(f'{$n/$FULL:.3f} of full')")"
done
echo "  dry run announced $ANNOUNCED bytes; the delta fetch moved $DELTA"
[ "$ANNOUNCED" = "$DELTA" ] || echo "  !! the dry run and the fetch disagree"

# ------------------------------------------------------------- times
median_spread() { python3 -c '
import statistics, sys
xs = sorted(float(x) for x in sys.argv[1:])
print(f"{statistics.median(xs):.3f} s ({xs[0]:.3f}-{xs[-1]:.3f})")' "$@"; }
ratio() { python3 -c '
import statistics, sys
n = int(sys.argv[1]); a = [float(x) for x in sys.argv[2:2+n]]; b = [float(x) for x in sys.argv[2+n:]]
r = statistics.median(a) / statistics.median(b)
lo = min(a) / max(b); hi = max(a) / min(b)
print(f"{r:.2f}x (spread {lo:.2f}-{hi:.2f})")' "$@"; }
timed() { python3 -c '
import subprocess, sys, time
t0 = time.perf_counter()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(f"{time.perf_counter() - t0:.4f}")' "$@"; }
T_FULL=(); T_DELTA=(); T_CHECKED=(); T_SIGNED=(); T_CRC=()
for _ in $(seq "$RUNS"); do
  fresh; T_FULL+=("$(timed "$SFT" fetch "$URL/new.sft" -o "$W/out.sft" --no-fsync)")
  fresh; T_DELTA+=("$(timed "$SFT" fetch "$URL/new.sft" -o "$W/out.sft" --no-fsync --base "$W/old.sft")")
  fresh; T_CHECKED+=("$(timed "$SFT" fetch "$URL/new.sft" -o "$W/out.sft" --no-fsync --base "$W/old.sft" --base-checked)")
  fresh; T_CRC+=("$(timed "$SFT" fetch "$URL/new-v10.sft" -o "$W/out.sft" --no-fsync)")
  fresh; T_SIGNED+=("$(timed "$SFT" fetch "$URL/new.sft" -o "$W/out.sft" --no-fsync --trusted-key "$W/key.pub")")
done
echo
echo "times on loopback, median of $RUNS (min-max):"
echo "  full fetch              $(median_spread "${T_FULL[@]}")"
echo "  delta fetch (--base)    $(median_spread "${T_DELTA[@]}")   delta/full: $(ratio "$RUNS" "${T_DELTA[@]}" "${T_FULL[@]}")"
echo "  delta, base checked     $(median_spread "${T_CHECKED[@]}")   delta/full: $(ratio "$RUNS" "${T_CHECKED[@]}" "${T_FULL[@]}")"
echo "    (--base-checked: the base was checked when stored, as the client store's are;"
echo "     copied blocks are checked by CRC and BLAKE3, not decoded again)"
echo "  CRC-only fetch (v1.0)   $(median_spread "${T_CRC[@]}")"
echo "  signed + BLAKE3 (v1.1)  $(median_spread "${T_SIGNED[@]}")   signed/CRC-only: $(ratio "$RUNS" "${T_SIGNED[@]}" "${T_CRC[@]}")"

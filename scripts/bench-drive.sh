#!/usr/bin/env bash
# The one driver (issue 14) against its peers, on packages of a REAL tree
# (never random bytes, which never inflate), packed with the defaults
# (zlib) and stored (--compression none), in one run:
#
#   local   `sft fetch --no-fsync PKG`            vs `cp PKG FILE`
#   http    `sft fetch --no-fsync http://nginx/`  vs `curl -o FILE`
#   verify  `sft verify http://nginx/`            vs `curl -o /dev/null`
#
# each by default (every block CRC-checked and, for zlib, inflate-checked)
# and with --crc-only. With SFT_OLD=path/to/an/older/sft the same rows are
# measured with that binary too, interleaved with the new one, so a
# before/after comparison comes from the same run on the same machine.
#
# Every figure is the best and the median of RUNS runs (wall time, page
# cache warm, previous outputs deleted and the rest synced before each
# timed run); ratios are peer time / sft time (> 1: sft is faster), with
# the spread: best-to-best and median-to-median.
#
# Usage: [TREE=DIR] [RUNS=7] [SFT_OLD=BIN] [ONLY=local|http|verify] scripts/bench-drive.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"
command -v nginx >/dev/null || { echo "bench-drive: nginx is not installed" >&2; exit 2; }
command -v curl >/dev/null || { echo "bench-drive: curl is not installed" >&2; exit 2; }
if [ -z "${SFT:-}" ]; then
  cargo build --release --features cli -q
  TD=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  SFT=$TD/release/sft
fi
RUNS=${RUNS:-7}
ONLY=${ONLY:-}
TREE=${TREE:-$(ls -d /usr/lib/jvm/java-*-openjdk-* 2>/dev/null | head -1)}
[ -n "$TREE" ] && [ -d "$TREE" ] || { echo "bench-drive: no TREE (set TREE=DIR to a real directory tree)" >&2; exit 2; }
W=$(mktemp -d)
NGINX_PID=""
cleanup() {
  [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

mkdir -p "$W/tree" "$W/content"
cp -rL "$TREE/." "$W/tree" 2>/dev/null || true
find "$W/tree" ! -type f ! -type d -delete 2>/dev/null || true
"$SFT" pack "$W/tree" -o "$W/content/zlib.sft" --name bench-zlib > /dev/null
"$SFT" pack "$W/tree" -o "$W/content/stored.sft" --name bench-stored --compression none > /dev/null
rm -rf "$W/tree"
chmod a+rx "$W" "$W/content"; chmod a+r "$W/content"/*.sft
cat "$W/content"/*.sft > /dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
NPORT=$(free_port)
mkdir -p "$W/nginx/logs" "$W/nginx/tmp"
cat > "$W/nginx/nginx.conf" <<EOF
worker_processes auto;
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 30;
  client_body_temp_path $W/nginx/tmp;
  proxy_temp_path $W/nginx/tmp;
  fastcgi_temp_path $W/nginx/tmp;
  uwsgi_temp_path $W/nginx/tmp;
  scgi_temp_path $W/nginx/tmp;
  types { application/octet-stream sft; }
  server { listen 127.0.0.1:$NPORT; root $W/content; }
}
EOF
nginx -p "$W/nginx" -c "$W/nginx/nginx.conf" -g 'daemon off;' 2> "$W/nginx/stderr" &
NGINX_PID=$!
NGX="http://127.0.0.1:$NPORT"
for _ in $(seq 100); do curl -sf -o /dev/null "$NGX/zlib.sft" -r 0-0 && break; sleep 0.05; done

settle() { rm -f "$W/out.sft" "$W/out.sft.partial" "$W/out.sft.partial.blocks" "$W/copy"; sync; }
timed() { # command... -> wall seconds
  settle
  python3 -c '
import subprocess, sys, time
t0 = time.perf_counter()
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)
print(time.perf_counter() - t0)' "$@"
}
stats() { # name values... -> "name best median"
  python3 -c '
import statistics, sys
v = sorted(float(x) for x in sys.argv[2:])
print(sys.argv[1], f"{v[0]:.4f}", f"{statistics.median(v):.4f}")' "$@"
}
echo "bench-drive: tree $TREE; zlib $(stat -c %s "$W/content/zlib.sft") B, stored $(stat -c %s "$W/content/stored.sft") B; $RUNS runs; load average: $(cut -d' ' -f1-3 /proc/loadavg)"

BINS=(new)
[ -n "${SFT_OLD:-}" ] && BINS=(old new)
bin() { if [ "$1" = old ]; then echo "$SFT_OLD"; else echo "$SFT"; fi; }

# One row: label, peer command (with PKG and URL placeholders), sft args.
row() { # what kind flags
  local what=$1 kind=$2 flags=$3
  local pkg="$W/content/$kind.sft" url="$NGX/$kind.sft"
  local peer=() sftcmd=()
  case $what in
    local) peer=(cp "$pkg" "$W/copy"); sftcmd=(fetch --no-fsync $flags "$pkg" -o "$W/out.sft") ;;
    http) peer=(curl -sf -o "$W/copy" "$url"); sftcmd=(fetch --no-fsync $flags "$url" -o "$W/out.sft") ;;
    verify) peer=(curl -sf -o /dev/null "$url"); sftcmd=(verify $flags "$url") ;;
  esac
  declare -A t=()
  local p=()
  for _ in $(seq "$RUNS"); do
    p+=("$(timed "${peer[@]}")")
    for b in "${BINS[@]}"; do t[$b]="${t[$b]:-} $(timed "$(bin "$b")" "${sftcmd[@]}")"; done
  done
  read -r _ pb pm < <(stats peer "${p[@]}")
  for b in "${BINS[@]}"; do
    # shellcheck disable=SC2086
    read -r _ sb sm < <(stats sft ${t[$b]})
    python3 -c "
pb, pm, sb, sm = $pb, $pm, $sb, $sm
print(f'  {\"$what\":6} {\"$kind\":6} {\"$flags\" or \"default\":10} {\"$b\":3}  sft {sb:.3f} s (median {sm:.3f})  peer {pb:.3f} s (median {pm:.3f})  ratio {pb/sb:.2f}x (medians {pm/sm:.2f}x)')"
  done
}
echo "  what   pkg    checks     bin  figures (best of $RUNS; ratio = peer / sft)"
for what in local http verify; do
  [ -n "$ONLY" ] && [ "$ONLY" != "$what" ] && continue
  for kind in zlib stored; do
    row "$what" "$kind" ""
    [ "$what" = verify ] || row "$what" "$kind" "--crc-only"
  done
done

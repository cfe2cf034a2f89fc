#!/usr/bin/env bash
# Benchmarks of `sft mount` (issue 15): time from starting a real
# application to its first output, the package on a server behind a
# 20 Mbit/s link, and local read speed through a mount.
#
# The application: the machine's JDK (`bin/java -version`; APP_DIR and
# APP_CMD override it), copied with symlinks dereferenced. The server:
# nginx on 127.0.0.1 (`sft serve --http` without it). The link: the
# crate's own shaping, `--limit-rate 2500000` (20 Mbit/s) on the client
# (no netem here; tbf needs a network namespace this VM does not give).
#
#  (a) `sft fetch` of the whole package, `sft extract`, run from the tree;
#  (b) `sft mount --background none` of the package packed with FB1 from a
#      trace recorded by `sft trace` of the same command, run from the
#      mount once FB1 is resident;
#  (c) the same with no FB1 (pure demand paging);
#  ideal: (prologue + FB1 stored bytes) / bandwidth.
#  Goals: (b) >= 10x faster than (a), <= 1.2x the ideal, moving <= 15% of
#  the package. Bytes moved are reported for each.
#  (d) reading every file through a fresh mount of a complete cache vs
#      reading the extracted tree (page cache warm for the tree and for the
#      cache file; and both cold, after drop_caches), zlib and stored;
#      goal >= 0.8x;
#  (e) one large file (lib/modules) read sequentially through a fresh
#      mount of a complete cache; goal >= 1 GB/s.
#
# Usage: scripts/bench-mount.sh [--quick]   (RUNS=N, default 3; root, FUSE)
set -euo pipefail
QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
cd "$(dirname "$0")/.."
if [ -z "${SFT:-}" ]; then
  cargo build --release --features cli,mount -q
  SFT=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/sft
fi
RUNS=${RUNS:-3}
[ $QUICK = 1 ] && RUNS=1
BW=2500000
W=$(mktemp -d)
cleanup() {
  for m in "$W"/mnt*; do mountpoint -q "$m" 2>/dev/null && umount -l "$m"; done
  [ -n "${SRV_PID:-}" ] && kill "$SRV_PID" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT

# ---------------------------------------------------------------- the app
if [ -n "${APP_DIR:-}" ]; then
  APP="$APP_DIR"; CMD=${APP_CMD:?APP_CMD with APP_DIR}
else
  JAVA=$(readlink -f "$(command -v java)")
  JHOME=$(dirname "$(dirname "$JAVA")")
  APP="$W/app"
  # Dereference symlinks (a package holds files); dangling ones are left out.
  cp -rL "$JHOME" "$APP" 2>/dev/null || true
  CMD="./bin/java -version"
fi
(cd "$APP" && sh -c "$CMD" > /dev/null 2>&1) || { echo "the application does not run: $CMD in $APP"; exit 1; }
echo "application: $CMD in a tree of $(du -sb "$APP" | cut -f1) bytes, $(find "$APP" -type f | wc -l) files"

mkdir -p "$W/www" "$W/mnt"
$SFT trace "$APP" -o "$W/launch.trace" -- sh -c "$CMD" > /dev/null 2>&1
$SFT pack "$APP" -o "$W/www/fb1.sft" --launch-trace "$W/launch.trace" > /dev/null
$SFT pack "$APP" -o "$W/www/nofb1.sft" > /dev/null
$SFT pack "$APP" -o "$W/www/stored.sft" --compression none > /dev/null
echo "trace: $(grep -vc '^#' "$W/launch.trace") items; packages: fb1 $(stat -c %s "$W/www/fb1.sft"), no FB1 $(stat -c %s "$W/www/nofb1.sft"), stored $(stat -c %s "$W/www/stored.sft") bytes"

# ---------------------------------------------------------------- server
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
if command -v nginx > /dev/null; then
  mkdir -p "$W/ngx/tmp"
  cat > "$W/ngx/nginx.conf" <<EOF
master_process off; daemon off; pid $W/ngx/nginx.pid; error_log $W/ngx/error.log;
events { worker_connections 64; }
http { access_log off; client_body_temp_path $W/ngx/tmp; proxy_temp_path $W/ngx/tmp;
  fastcgi_temp_path $W/ngx/tmp; uwsgi_temp_path $W/ngx/tmp; scgi_temp_path $W/ngx/tmp;
  default_type application/octet-stream;
  server { listen 127.0.0.1:$PORT; root $W/www; } }
EOF
  nginx -p "$W/ngx" -c "$W/ngx/nginx.conf" & SRV_PID=$!
  SERVER=nginx
else
  $SFT serve --http "127.0.0.1:$PORT" "$W/www" > /dev/null 2>&1 & SRV_PID=$!
  SERVER="sft serve --http"
fi
python3 - "$PORT" <<'EOF'
import socket, sys, time
for _ in range(200):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.1).close(); sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit("the server did not start")
EOF
URL="http://127.0.0.1:$PORT"
echo "server: $SERVER on $URL; link: --limit-rate $BW (20 Mbit/s); runs: $RUNS"

# ---------------------------------------------------------------- (a)-(c)
python3 - "$SFT" "$URL" "$W" "$BW" "$CMD" "$RUNS" <<'EOF'
import os, statistics, struct, subprocess, sys, time
sft, url, w, bw, cmd, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], int(sys.argv[6])
mnt = os.path.join(w, "mnt")

def first_output(cwd, t0):
    """Run cmd in cwd; seconds from t0 to its first output byte."""
    p = subprocess.Popen(["sh", "-c", cmd], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    p.stdout.read(1)
    t = time.time() - t0
    p.stdout.read()
    if p.wait() != 0:
        sys.exit(f"{cmd} failed in {cwd}")
    return t

def header(path):
    with open(path, "rb") as f:
        h = f.read(64)
    return struct.unpack_from("<Q", h, 16)[0], struct.unpack_from("<Q", h, 56)[0]

def case_a():
    out, tree = os.path.join(w, "a.sft"), os.path.join(w, "a-tree")
    subprocess.run(["rm", "-rf", out, tree], check=True)
    t0 = time.time()
    subprocess.run([sft, "fetch", f"{url}/nofb1.sft", "-o", out, "--limit-rate", str(bw)], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([sft, "extract", out, tree], check=True, stdout=subprocess.DEVNULL)
    return first_output(tree, t0), os.path.getsize(out)

def case_mount(name):
    t0 = time.time()
    m = subprocess.Popen([sft, "mount", f"{url}/{name}", mnt, "--limit-rate", str(bw), "--background", "none"],
                         stderr=subprocess.PIPE, text=True)
    for line in m.stderr:
        if "FB1 resident" in line:
            break
    t = first_output(mnt, t0)
    subprocess.run([sft, "unmount", mnt], check=True)
    rest = m.stderr.read()
    if m.wait() != 0:
        sys.exit(f"sft mount failed: {rest}")
    moved = next(l for l in rest.splitlines() if " moved " in l)
    return t, int(moved.split(" moved ")[1].split()[0])

size = {n: os.path.getsize(os.path.join(w, "www", n)) for n in ("fb1.sft", "nofb1.sft")}
plen, fb1 = header(os.path.join(w, "www", "fb1.sft"))
ideal = (plen + fb1) / bw
res = {"a": [], "b": [], "c": []}
for _ in range(runs):
    res["a"].append(case_a())
    res["b"].append(case_mount("fb1.sft"))
    res["c"].append(case_mount("nofb1.sft"))
def med(k): return statistics.median(t for t, _ in res[k])
def spread(k):
    ts = [t for t, _ in res[k]]
    return f"{min(ts):.2f}-{max(ts):.2f}"
def moved(k): return statistics.median(b for _, b in res[k])
a, b, c = med("a"), med("b"), med("c")
print(f"(a) fetch + extract + run:   {a:7.2f} s ({spread('a')}), moved {moved('a'):.0f} bytes (100% of {size['nofb1.sft']})")
print(f"(b) mount, traced FB1:       {b:7.2f} s ({spread('b')}), moved {moved('b'):.0f} bytes ({100*moved('b')/size['fb1.sft']:.1f}%)")
print(f"(c) mount, no FB1 (demand):  {c:7.2f} s ({spread('c')}), moved {moved('c'):.0f} bytes ({100*moved('c')/size['nofb1.sft']:.1f}%)")
print(f"ideal (prologue {plen} + FB1 {fb1} bytes at {bw} B/s): {ideal:.2f} s")
ok = True
for what, good in [
    (f"(b) {a/b:.1f}x faster than (a) (goal >= 10x)", a / b >= 10),
    (f"(b) {b/ideal:.2f}x the ideal (goal <= 1.2x)", b / ideal <= 1.2),
    (f"(b) moved {100*moved('b')/size['fb1.sft']:.1f}% of the package (goal <= 15%)", moved("b") <= 0.15 * size["fb1.sft"]),
]:
    print(f"    {'PASS' if good else 'FAIL'}: {what}")
    ok &= good
sys.exit(0 if ok else 1)
EOF
status=$?

# ---------------------------------------------------------------- (d), (e)
python3 - "$SFT" "$W" "$RUNS" <<'EOF' || status=1
import os, statistics, subprocess, sys, time
sft, w, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
mnt = os.path.join(w, "mnt")

def drop_caches():
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")

def read_all(root):
    """Seconds to read every file under root (one `cat` per batch of files)."""
    t0 = time.perf_counter()
    subprocess.run(f"find . -type f -print0 | xargs -0 cat > /dev/null", shell=True, cwd=root, check=True)
    return time.perf_counter() - t0

def mounted(pkg, cache):
    m = subprocess.Popen([sft, "mount", pkg, mnt, "--cache-dir", cache], stderr=subprocess.PIPE, text=True)
    for line in m.stderr:
        if "mounted on" in line:
            return m
    sys.exit(f"sft mount {pkg} did not mount")

def unmount(m):
    subprocess.run([sft, "unmount", mnt], check=True)
    m.stderr.read()
    if m.wait() != 0:
        sys.exit("sft mount failed")

ok = True
for name in ("fb1.sft", "stored.sft"):
    pkg = os.path.join(w, "www", name)
    tree, cache = os.path.join(w, f"tree-{name}"), os.path.join(w, f"cache-{name}")
    subprocess.run(["rm", "-rf", tree, cache], check=True)
    os.makedirs(cache)
    subprocess.run([sft, "extract", pkg, tree], check=True, stdout=subprocess.DEVNULL)
    total = int(subprocess.run(["du", "-sb", tree], capture_output=True, text=True).stdout.split()[0])
    # Complete the cache: one mount read through.
    m = mounted(pkg, cache); read_all(mnt); unmount(m)
    rows = {}
    for temp in ("warm", "cold"):
        t_tree, t_mount, t_seq = [], [], []
        for _ in range(runs):
            if temp == "warm":
                read_all(tree)
            else:
                drop_caches()
            t_tree.append(read_all(tree))
            if temp == "cold":
                drop_caches()
            m = mounted(pkg, cache)  # opening re-verifies the cache (warms it)
            if temp == "cold":
                drop_caches()
            t_mount.append(read_all(mnt))
            unmount(m)
            m = mounted(pkg, cache)
            if temp == "cold":
                drop_caches()
            big = os.path.join(mnt, "lib", "modules")
            if not os.path.exists(big):
                big = max((os.path.join(d, f) for d, _, fs in os.walk(mnt) for f in fs), key=os.path.getsize)
            n = os.path.getsize(big)
            t0 = time.perf_counter()
            subprocess.run(["dd", f"if={big}", "of=/dev/null", "bs=1M"], check=True, stderr=subprocess.DEVNULL)
            t_seq.append((n, time.perf_counter() - t0))
            unmount(m)
        tt, tm = statistics.median(t_tree), statistics.median(t_mount)
        seq = statistics.median(n / t / 1e9 for n, t in t_seq)
        ratio = tt / tm
        print(f"(d) {name:10} {temp}: every file ({total} bytes): tree {tt:.3f} s ({total/tt/1e6:.0f} MB/s), "
              f"mount {tm:.3f} s ({total/tm/1e6:.0f} MB/s, {min(t_mount):.3f}-{max(t_mount):.3f}): {ratio:.2f}x "
              f"{'PASS' if ratio >= 0.8 else 'FAIL'} (goal >= 0.8x)")
        print(f"(e) {name:10} {temp}: {os.path.relpath(big, mnt)} ({n} bytes) sequential through the mount: {seq:.2f} GB/s "
              f"{'PASS' if seq >= 1.0 else 'FAIL'} (goal >= 1 GB/s)")
        ok &= ratio >= 0.8 and seq >= 1.0
sys.exit(0 if ok else 1)
EOF
exit $status

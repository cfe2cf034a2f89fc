#!/usr/bin/env bash
# The Management Server under load (issue 16's benchmark): USERS users in
# GROUP_COUNT groups, PACKAGES small packages (real SFTs of two-file trees,
# with manifests and OSDs), each group granted PER_GROUP of
# them; `sft manage serve` (release build) on SQLite and on a private
# PostgreSQL (scripts/pg.sh), driven by examples/manage_load.rs with
# THREADS keep-alive connections, RUNS times each:
#   full   - every user refreshes once on a fresh server (answers computed)
#   304    - unchanged refreshes with the ETag, for SECONDS
#   cached - full answers again (from the server's cache), for SECONDS
# Prints each run's JSON lines, then a table: median (min-max) of the
# rate and p99 per phase and back end, the 304 path's advantage over a
# computed answer (rate ratio and p50 ratio), and the server's peak RSS.
# Usage: scripts/bench-manage.sh  (env: USERS GROUP_COUNT PACKAGES PER_GROUP
# THREADS PHASE_SECONDS RUNS BACKENDS="sqlite postgres")
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${USERS:-10000} GROUPS_N=${GROUP_COUNT:-500} PACKAGES=${PACKAGES:-1000} PER_GROUP=${PER_GROUP:-20}
THREADS=${THREADS:-4} SECONDS_=${PHASE_SECONDS:-5} RUNS=${RUNS:-3} BACKENDS=${BACKENDS:-"sqlite postgres"}
target=$(cargo metadata --no-deps --format-version 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
cargo build --release --quiet --features cli,manage
cargo build --release --quiet --example manage_load --features manage,write
sft="$target/release/sft"; load="$target/release/examples/manage_load"
work=$(mktemp -d); chmod 755 "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; scripts/pg.sh stop "$work/pg" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
echo "machine: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB; $USERS users, $GROUPS_N groups, $PACKAGES packages, $PER_GROUP per group; $THREADS connections, ${SECONDS_}s phases, $RUNS runs"
results="$work/results.jsonl"; : > "$results"
for backend in $BACKENDS; do
  case $backend in
    sqlite) db="sqlite:$work/sqlite.db" ;;
    postgres)
      url=$(scripts/pg.sh start "$work/pg" "$(free_port)") || { echo "postgres: not available, skipped" >&2; continue; }
      port=${url##*:}; port=${port%%/*}
      psql -h 127.0.0.1 -p "$port" -U sft -d postgres -qc "CREATE DATABASE bench"
      db="${url%/postgres}/bench" ;;
  esac
  "$load" setup "$db" "$work/content-$backend" "$USERS" "$GROUPS_N" "$PACKAGES" "$PER_GROUP" "$work/tokens-$backend"
  # A server's database in steady state has its statistics (autovacuum
  # gathers them within minutes); measure that, not the minutes after a
  # bulk load.
  if [ "$backend" = postgres ]; then psql -h 127.0.0.1 -p "$port" -U sft -d bench -qc "VACUUM ANALYZE"; fi
  for run in $(seq "$RUNS"); do
    port=$(free_port)
    "$sft" manage --db "$db" --content "$work/content-$backend" serve --http "127.0.0.1:$port" --no-access-log > "$work/serve.out" 2> "$work/serve.err" &
    pid=$!; pids+=("$pid")
    for _ in $(seq 100); do grep -q listening "$work/serve.out" 2>/dev/null && break; sleep 0.05; done
    "$load" run "127.0.0.1:$port" "$work/tokens-$backend" "$THREADS" "$SECONDS_" | while read -r line; do
      echo "$line"
      echo "{\"backend\":\"$backend\",\"run\":$run,${line#\{}" >> "$results"
    done
    rss=$(awk '/VmHWM/{print $2}' "/proc/$pid/status")
    echo "{\"backend\":\"$backend\",\"run\":$run,\"phase\":\"rss\",\"kib\":$rss}" >> "$results"
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def pick(b, ph, k): return [r[k] for r in rows if r["backend"] == b and r["phase"] == ph]
def fmt(v, d=0): return f"{statistics.median(v):.{d}f} ({min(v):.{d}f}-{max(v):.{d}f})" if v else "-"
print("\n| back end | phase | refreshes/s | p99 ms | p50 ms |")
print("|---|---|---|---|---|")
for b in sorted({r["backend"] for r in rows}):
    for ph in ("full", "304", "cached"):
        print(f"| {b} | {ph} | {fmt(pick(b, ph, 'per_second'))} | {fmt(pick(b, ph, 'p99_ms'), 2)} | {fmt(pick(b, ph, 'p50_ms'), 3)} |")
print("\n| back end | 304 vs computed answer: rate ratio | p50 ratio | server peak RSS MiB |")
print("|---|---|---|---|")
for b in sorted({r["backend"] for r in rows}):
    runs = sorted({r["run"] for r in rows if r["backend"] == b})
    rate = [pick(b, "304", "per_second")[i] / pick(b, "full", "per_second")[i] for i in range(len(runs))]
    p50 = [pick(b, "full", "p50_ms")[i] / pick(b, "304", "p50_ms")[i] for i in range(len(runs))]
    rss = [k / 1024 for k in pick(b, "rss", "kib")]
    print(f"| {b} | {fmt(rate, 1)}x | {fmt(p50, 1)}x | {fmt(rss)} |")
bad = sum(r.get("unexpected_status", 0) for r in rows)
print(f"\nunexpected statuses: {bad}")
sys.exit(1 if bad else 0)
PY

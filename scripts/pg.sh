#!/usr/bin/env bash
# A private PostgreSQL cluster for the Management Server's tests and
# benchmark (no system service): `scripts/pg.sh start DIR PORT` creates
# DIR/data (if new) and starts postgres on 127.0.0.1:PORT with its socket
# in DIR, trust authentication, user `sft`; `scripts/pg.sh stop DIR`
# stops it. Prints the URL on start: postgres://sft@127.0.0.1:PORT/postgres
# As root it runs as the `postgres` user (initdb refuses root).
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?DIR}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bin" ] && [ -x "$bin/initdb" ] || { echo "pg.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 3; }
as() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case $cmd in
  start)
    port=${3:?PORT}
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir" && chmod 700 "$dir"
    if [ ! -d "$dir/data" ]; then
      as "$bin/initdb" -D "$dir/data" -A trust -U sft --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    as "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null \
      || { cat "$dir/log" >&2; exit 1; }
    echo "postgres://sft@127.0.0.1:$port/postgres"
    ;;
  stop)
    as "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    ;;
  *) echo "pg.sh: start DIR PORT | stop DIR" >&2; exit 2 ;;
esac

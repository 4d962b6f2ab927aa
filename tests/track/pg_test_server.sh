#!/usr/bin/env bash
# Runs a command against a throwaway PostgreSQL server:
#
#   pg_test_server.sh COMMAND [ARGS...]
#
# initdb into a temporary folder, start the server on 127.0.0.1 at a free port (its
# unix socket in the same folder, fsync off), create the database deft_test, export
# DEFT_TEST_PG_URL=postgresql://deft@127.0.0.1:PORT/deft_test, run the command, and
# stop and delete the server on the way out, whatever happens. The server binaries
# come from /usr/lib/postgresql/*/bin (Debian's postgresql package, installed by
# scripts/bootstrap). PostgreSQL refuses to run as root: as root the server runs as
# the postgres user.
set -euo pipefail

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "pg_test_server.sh: no PostgreSQL server in /usr/lib/postgresql/*/bin (run scripts/bootstrap)" >&2
  exit 1
fi

as_server=()
if [ "$(id -u)" = 0 ]; then as_server=(runuser -u postgres --); fi

tmp=$(mktemp -d /tmp/deft-pg-XXXXXX)
chmod 755 "$tmp"
if [ "$(id -u)" = 0 ]; then chown postgres: "$tmp"; fi
stop() {
  "${as_server[@]}" "$bindir/pg_ctl" -D "$tmp/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap stop EXIT

"${as_server[@]}" "$bindir/initdb" -D "$tmp/data" -U deft --auth=trust -E UTF8 --no-sync >"$tmp/initdb.log" 2>&1 ||
  { cat "$tmp/initdb.log" >&2; exit 1; }

# A free port: ask the kernel for one, then start; another process may take it in
# between, so try a few.
for attempt in 1 2 3 4 5; do
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  if "${as_server[@]}" "$bindir/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w -t 30 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $tmp -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
      start >/dev/null 2>&1; then
    break
  fi
  if [ "$attempt" = 5 ]; then
    echo "pg_test_server.sh: the server did not start; its log:" >&2
    cat "$tmp/server.log" >&2
    exit 1
  fi
done

"$bindir/createdb" -h 127.0.0.1 -p "$port" -U deft deft_test
export DEFT_TEST_PG_URL="postgresql://deft@127.0.0.1:$port/deft_test"
echo "pg_test_server.sh: $DEFT_TEST_PG_URL (PostgreSQL from $bindir)"
"$@"

#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for the tests and for trying `augbench worker` on one machine:
# a cluster of its own under $AUGBENCH_PG_DIR (default /tmp/augbench-pg), listening on 127.0.0.1 only,
# port $AUGBENCH_PG_PORT (default 54329), with a login role and database `augbench` (password auth).
# Idempotent: a server already running there is reused. Prints one line for the shell:
#
#   eval "$(bash scripts/start-postgres.sh)"     # exports AUGBENCH_TEST_POSTGRES_URL
#   bash scripts/start-postgres.sh --stop        # stops it (the folder stays; delete it to start afresh)
#
# Needs Debian's `postgresql` package (scripts/setup-system.sh --tests installs it). As root the server
# runs as the `postgres` system user, since PostgreSQL refuses to run as root.
set -euo pipefail

dir=${AUGBENCH_PG_DIR:-/tmp/augbench-pg}
port=${AUGBENCH_PG_PORT:-54329}
role=augbench
database=augbench
# A password only for this loopback test server; the URL printed below carries it.
password=${AUGBENCH_PG_PASSWORD:-augbench-loopback-only}

say() { echo "start-postgres: $*" >&2; }

bindir=""
for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
  [[ -x "$candidate/pg_ctl" ]] && { bindir=$candidate; break; }
done
if [[ -z "$bindir" ]] && command -v pg_config >/dev/null; then bindir=$(pg_config --bindir); fi
if [[ -z "$bindir" || ! -x "$bindir/pg_ctl" ]]; then
  say "PostgreSQL server binaries not found (install Debian's postgresql package: scripts/setup-system.sh --tests)"
  exit 1
fi

owner=$(id -un)
as_owner() { "$@"; }
if [[ $(id -u) -eq 0 ]]; then
  owner=postgres
  as_owner() { runuser -u postgres -- "$@"; }
fi

data="$dir/data"
socket="$dir/socket"

if [[ "${1:-}" == "--stop" ]]; then
  if [[ -f "$data/postmaster.pid" ]]; then
    as_owner "$bindir/pg_ctl" -D "$data" -m fast -w stop >&2
  else
    say "no server running in $data"
  fi
  exit 0
fi

mkdir -p "$dir"
[[ $(id -u) -eq 0 ]] && chown "$owner" "$dir"
as_owner mkdir -p "$socket"

if [[ ! -f "$data/PG_VERSION" ]]; then
  say "creating a cluster in $data"
  as_owner "$bindir/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --no-sync >/dev/null
fi

if ! as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    say "port $port on 127.0.0.1 is taken by another program; set AUGBENCH_PG_PORT to a free port"
    exit 1
  fi
  say "starting PostgreSQL on 127.0.0.1:$port (log: $dir/server.log)"
  as_owner "$bindir/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$socket -c fsync=off -c max_connections=200" \
    start >/dev/null
fi

psql_admin() { as_owner psql -X -q -v ON_ERROR_STOP=1 -h "$socket" -p "$port" -U postgres -d postgres "$@"; }
if [[ -z $(psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$role'") ]]; then
  psql_admin -c "CREATE ROLE $role LOGIN CREATEDB PASSWORD '$password'"
fi
if [[ -z $(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$database'") ]]; then
  psql_admin -c "CREATE DATABASE $database OWNER $role"
fi

echo "export AUGBENCH_TEST_POSTGRES_URL=postgresql://$role:$password@127.0.0.1:$port/$database"

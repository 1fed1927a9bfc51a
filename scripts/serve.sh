#!/usr/bin/env bash
# Runs the auction server locally, from nothing: the first of the README's two commands.
#
#   scripts/serve.sh [extra `bidding-server serve` args...]
#
# Installs the Debian packages, builds, starts a local Postgres and Redis under .local/
# (scripts/local-services.sh), migrates and seeds the database, then serves on APP_PORT
# (default 8000): ws://127.0.0.1:8000/ws/bid/1
#
# DATABASE_URL, REDIS_URL and APP_PORT default to the local services and 8000 unless they are
# set in the environment or in ./.env (which the server reads itself; real variables win).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
"$root/scripts/local-services.sh" start

# True when ./.env assigns the variable.
dotenv_sets() {
    [[ -f .env ]] && grep -Eq "^[[:space:]]*(export[[:space:]]+)?$1[[:space:]]*=" .env
}

# Exports NAME=VALUE unless the environment or ./.env already sets NAME.
default_var() {
    local name=$1 value=$2
    if [[ -z ${!name+set} ]] && ! dotenv_sets "$name"; then
        export "$name=$value"
    fi
}

# POSTGRES_HOST (in the environment or .env) means the user configures Postgres field by field.
if [[ -z ${POSTGRES_HOST+set} ]] && ! dotenv_sets POSTGRES_HOST; then
    default_var DATABASE_URL "postgresql://bidding:bidding@127.0.0.1:${LOCAL_PG_PORT:-55432}/bidding"
fi
default_var REDIS_URL "redis://127.0.0.1:${LOCAL_REDIS_PORT:-56379}/0"
default_var APP_PORT 8000

server="$root/build/bidding-server"
"$server" migrate
"$server" seed
echo "serve: starting on port ${APP_PORT:-(from .env)}; stop with Ctrl-C, then scripts/local-services.sh stop"
exec "$server" serve "$@"

#!/usr/bin/env bash
# Fuzzes the served OpenAPI document with schemathesis against a real server on PostgreSQL:
# no 5xx, no response outside its schema, no undocumented status, no undocumented content type.
# The run is reproducible (fixed seed) and bounded (examples per operation); see docs/api.md,
# "Fuzzing with schemathesis", for what it covers and the one allow-list (semantic 422s).
#
#   tests/schemathesis/run.sh BINARY POSTGRES_URL
#
# BINARY is a built `meshintent`; POSTGRES_URL a database in which a fresh schema may be made
# (dropped afterwards). Environment: SCHEMATHESIS_VENV (where schemathesis is installed,
# default target/schemathesis-venv), SCHEMATHESIS_SEED, SCHEMATHESIS_MAX_EXAMPLES,
# SCHEMATHESIS_PORT.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=$(realpath "${1:?usage: run.sh BINARY POSTGRES_URL}")
pg=${2:?usage: run.sh BINARY POSTGRES_URL}

version=4.32.5 # pinned: checks and generation change between releases
seed=${SCHEMATHESIS_SEED:-20260101}
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-10}
port=${SCHEMATHESIS_PORT:-18099}
venv=${SCHEMATHESIS_VENV:-$root/target/schemathesis-venv}

if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -qF "$version"; then
  python3 -m venv "$venv" 2>/dev/null \
    || { apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null && python3 -m venv "$venv"; }
  "$venv/bin/pip" install -q "schemathesis==$version"
fi

work=$(mktemp -d)
schema_name="st_$(date +%s)_$$"
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  psql "$pg" -qtAc "DROP SCHEMA IF EXISTS $schema_name CASCADE" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

psql "$pg" -qtAc "CREATE SCHEMA $schema_name" >/dev/null
sep='?'
case "$pg" in *'?'*) sep='&' ;; esac
database_url="$pg${sep}options[search_path]=$schema_name"

token=$("$venv/bin/python" -c 'import base64, secrets; print("mi_" + base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode())')
secret_key=$("$venv/bin/python" -c 'import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())')
api="http://127.0.0.1:$port"

# schemathesis sends wrong credentials on purpose (ignored_auth); the failed-authentication
# limit would turn everything after into 429s from loopback.
(cd "$work" && DATABASE_URL="$database_url" MESHINTENT_SECRET_KEY="$secret_key" \
  MESHINTENT_BOOTSTRAP_TOKEN="$token" MESHINTENT_LISTEN="127.0.0.1:$port" \
  MESHINTENT_AUTH_FAILURES_PER_MINUTE=1000000 RUST_LOG="${RUST_LOG:-warn}" \
  exec "$bin" serve >"$work/server.log" 2>&1) &
server=$!
for _ in $(seq 1 100); do curl -fsS "$api/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsS "$api/readyz" >/dev/null || { cat "$work/server.log" >&2; exit 1; }

# Parents for the generated requests: schemathesis.toml pins the path parameters to these names.
TOKEN=$token API=$api bash "$here/seed.sh"

start=$(date +%s)
status=0
(cd "$here" && "$venv/bin/schemathesis" --config-file "$here/schemathesis.toml" run "$api/api-docs/openapi.json" \
  --seed "$seed" --max-examples "$max_examples" \
  -H "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
  --report junit --report-dir "$work/report" --no-color) || status=$?
echo "schemathesis: exit $status after $(($(date +%s) - start)) s (seed $seed, at most $max_examples examples per operation)"
if grep -q 'panicked\|request failed' "$work/server.log"; then
  echo "the server logged failures:" >&2
  grep 'panicked\|request failed' "$work/server.log" | head -20 >&2
  status=1
fi
exit "$status"

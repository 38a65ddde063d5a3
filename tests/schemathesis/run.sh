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
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-5}
port=${SCHEMATHESIS_PORT:-18099}
# Absolute: schemathesis runs from this directory (its config file's), and CI passes a relative venv.
venv=$(realpath -m "${SCHEMATHESIS_VENV:-$root/target/schemathesis-venv}")
reports=$(realpath -m "${SCHEMATHESIS_REPORTS:-$root/target/schemathesis}")

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

# One run per phase (the stateful phase with fuzzing, whose responses give it links to follow),
# the seed made again before each: the deletes of one phase do not starve the next.
rm -rf "$reports"
start=$(date +%s)
status=0
for phase in examples coverage fuzzing,stateful; do
  TOKEN=$token API=$api bash "$here/seed.sh"
  phase_start=$(date +%s)
  phase_status=0
  mkdir -p "$reports/$phase"
  (cd "$here" && "$venv/bin/schemathesis" --config-file "$here/schemathesis.toml" run "$api/api-docs/openapi.json" \
    --phases "$phase" --seed "$seed" --max-examples "$max_examples" --workers 1 \
    -H "Authorization: Bearer $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
    --report junit,ndjson --report-dir "$reports/$phase" --no-color >"$reports/$phase.log" 2>&1) || phase_status=$?
  echo "schemathesis $phase: exit $phase_status after $(($(date +%s) - phase_start)) s: $(grep -E '^=+ .* in [0-9.]+s =+$' "$reports/$phase.log" | tr -d '=')"
  if [ "$phase_status" -ne 0 ]; then
    status=$phase_status
    sed -n '/^=* \(ERRORS\|FAILURES\) =*$/,$p' "$reports/$phase.log" >&2
  fi
done
echo "schemathesis: $(($(date +%s) - start)) s in all (seed $seed, at most $max_examples examples per operation and phase)"
"$venv/bin/python" "$here/coverage.py" "$reports"/*/*.ndjson >"$reports/coverage.txt"
tail -n 1 "$reports/coverage.txt"
if grep -q 'panicked\|request failed' "$work/server.log"; then
  echo "the server logged failures:" >&2
  grep 'panicked\|request failed' "$work/server.log" | head -20 >&2
  status=1
fi
exit "$status"

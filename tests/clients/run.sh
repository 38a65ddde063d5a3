#!/usr/bin/env bash
# Generated clients against the committed OpenAPI document (docs/api.md, "Generated clients").
#
#   tests/clients/run.sh install      pinned generators and type checkers (idempotent)
#   tests/clients/run.sh python       openapi-python-client, mypy --strict, the walk-through
#   tests/clients/run.sh typescript   @hey-api/openapi-ts, tsc --strict, the walk-through
#
# The walk-throughs need a running server: MESHINTENT_URL (its base URL) and MESHINTENT_TOKEN (an
# admin token). tests/api/clients.rs starts one and runs this script.
#
# MESHINTENT_CLIENTS_VENV  Python venv for the tools (default target/clients-venv)
# MESHINTENT_CLIENTS_OUT   where generated code goes (default: a fresh temporary directory)
# MESHINTENT_OPENAPI       the document (default openapi/openapi.json)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=${MESHINTENT_CLIENTS_VENV:-$root/target/clients-venv}
doc=${MESHINTENT_OPENAPI:-$root/openapi/openapi.json}
ts_tools=$here/typescript/node_modules

step() { printf '== clients: %s\n' "$*"; }

install() {
  # Python: a venv holding exactly python/requirements.txt; reinstalled only when that changes.
  local stamp=$venv/.requirements.txt
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" 2>/dev/null || {
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null && python3 -m venv "$venv"
    }
  fi
  if ! cmp -s "$here/python/requirements.txt" "$stamp"; then
    step "pip install -r tests/clients/python/requirements.txt"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/python/requirements.txt"
    cp "$here/python/requirements.txt" "$stamp"
  fi
  # TypeScript: npm ci from the committed lock file, again only when it changes.
  command -v npm >/dev/null || {
    apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
  }
  if ! cmp -s "$here/typescript/package-lock.json" "$ts_tools/.meshintent-lock.json"; then
    step "npm ci in tests/clients/typescript"
    (cd "$here/typescript" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$here/typescript/package-lock.json" "$ts_tools/.meshintent-lock.json"
  fi
}

need_server() {
  : "${MESHINTENT_URL:?the walk-through needs a running server: set MESHINTENT_URL}"
  : "${MESHINTENT_TOKEN:?the walk-through needs an admin token: set MESHINTENT_TOKEN}"
}

work_dir() {
  local out=${MESHINTENT_CLIENTS_OUT:-$(mktemp -d)}
  rm -rf "${out:?}/$1"
  mkdir -p "$out/$1"
  echo "$out/$1"
}

python_client() {
  need_server
  local dir log
  dir=$(work_dir python)
  log=$dir/generate.log
  step "openapi-python-client generate -> $dir"
  # The venv's bin first: the generator formats its output with the ruff installed beside it.
  # The default layout (a project with its pyproject.toml) limits ruff to the generator's rules;
  # with --meta none ruff applies its own defaults, whose fixes break mypy --strict (docs/api.md).
  if ! PATH="$venv/bin:$PATH" "$venv/bin/openapi-python-client" generate --path "$doc" \
    --config "$here/python/config.yaml" --output-path "$dir/meshintent-client" \
    >"$log" 2>&1; then
    cat "$log" >&2
    exit 1
  fi
  # It skips what it cannot model and says so with a warning: the whole document must generate.
  if grep -qi 'warning' "$log"; then
    cat "$log" >&2
    echo "openapi-python-client warned about the document" >&2
    exit 1
  fi
  dir=$dir/meshintent-client
  cp "$here/python/walkthrough.py" "$dir/"
  step "mypy --strict meshintent_client walkthrough.py"
  (cd "$dir" && "$venv/bin/mypy" --strict --cache-dir "$dir/.mypy_cache" meshintent_client walkthrough.py)
  step "python walkthrough.py"
  (cd "$dir" && "$venv/bin/python" walkthrough.py)
}

typescript_client() {
  need_server
  local dir
  dir=$(work_dir typescript)
  cp "$here/typescript/walkthrough.ts" "$here/typescript/tsconfig.json" \
    "$here/typescript/openapi-ts.config.mjs" "$dir/"
  ln -s "$ts_tools" "$dir/node_modules"
  # ES modules, as the generated code and the walk-through are written.
  printf '{"type": "module"}\n' >"$dir/package.json"
  step "openapi-ts (@hey-api/client-fetch) -> $dir/generated"
  (cd "$dir" && MESHINTENT_OPENAPI=$doc node_modules/.bin/openapi-ts -f openapi-ts.config.mjs --no-log-file -s)
  # One pass type-checks (strict, tsconfig.json and --strict) and, only if that passes, emits
  # the JavaScript the walk-through runs as (noEmitOnError).
  step "tsc --strict (generated code and walkthrough.ts)"
  (cd "$dir" && node_modules/.bin/tsc -p . --strict)
  step "node dist/walkthrough.js"
  (cd "$dir" && node dist/walkthrough.js)
}

case "${1:-}" in
  install) install ;;
  python) python_client ;;
  typescript) typescript_client ;;
  *)
    echo "usage: $0 install|python|typescript" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# Serves the web app (dashboard, report pages, JSON API) under gunicorn on $BIND
# (default 127.0.0.1:8000), API_WORKERS processes with API_THREADS threads each (default 2 × 2):
# requests are short, the long work happens in the worker. API_ACCESS_LOG ("-" or a file) turns on
# gunicorn's access log, off by default (config.py says why). Extra arguments go to gunicorn.
# The database must be at the newest schema revision (./run.sh upgrades it; alone, run
# `.venv/bin/alembic upgrade head` first): the app refuses to start on one that is behind.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-.venv/bin/python}
if [ ! -x "$PY" ] && ! command -v "$PY" >/dev/null 2>&1; then
    echo "run_api.sh: $PY not found: run ./run.sh once to create .venv, or set PYTHON" >&2
    exit 1
fi
# Invalid settings: python -m config prints their own sentences, and the script stops there.
settings=$("$PY" -m config BIND API_WORKERS API_THREADS API_ACCESS_LOG) || exit 1
mapfile -t cfg <<<"$settings"
access_log=()
if [ -n "${cfg[3]:-}" ]; then
    access_log=(--access-logfile "${cfg[3]}")
fi
exec "$PY" -m gunicorn 'webapp:create_app()' \
    --config webapp/gunicorn_config.py \
    --bind "${cfg[0]}" \
    --workers "${cfg[1]}" \
    --worker-class gthread \
    --threads "${cfg[2]}" \
    --timeout 120 \
    "${access_log[@]}" \
    "$@"

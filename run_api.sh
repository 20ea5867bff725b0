#!/usr/bin/env bash
# Serves the web app (JSON API and pages) under gunicorn on $BIND (default 127.0.0.1:8000).
# Two processes with two threads each: requests are short, the long work happens in the worker.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
BIND=${BIND:-$("$PY" -m config BIND)}
exec "$PY" -m gunicorn 'webapp:create_app()' \
    --workers "${API_WORKERS:-2}" \
    --threads "${API_THREADS:-2}" \
    --timeout 120 \
    --bind "$BIND" \
    --access-logfile - \
    "$@"

#!/usr/bin/env bash
# Starts Flower, Celery's monitor, on $FLOWER_ADDRESS:$FLOWER_PORT (default 127.0.0.1:5555).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-.venv/bin/python}
if [ ! -x "$PY" ] && ! command -v "$PY" >/dev/null 2>&1; then
    echo "run_flower.sh: $PY not found: run ./run.sh once to create .venv, or set PYTHON" >&2
    exit 1
fi
mapfile -t cfg < <("$PY" -m config FLOWER_PORT FLOWER_ADDRESS)
exec "$PY" -m celery -A worker.celery_app flower --port="${cfg[0]}" --address="${cfg[1]}" "$@"

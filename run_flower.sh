#!/usr/bin/env bash
# Starts Flower, Celery's monitor, on $FLOWER_ADDRESS:$FLOWER_PORT (default 127.0.0.1:5555).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
PORT=${FLOWER_PORT:-$("$PY" -m config FLOWER_PORT)}
ADDRESS=${FLOWER_ADDRESS:-$("$PY" -m config FLOWER_ADDRESS)}
exec "$PY" -m celery -A worker.celery_app flower --port="$PORT" --address="$ADDRESS" "$@"

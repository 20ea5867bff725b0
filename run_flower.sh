#!/usr/bin/env bash
# Starts Flower, Celery's monitor, on $FLOWER_ADDRESS:$FLOWER_PORT (default 127.0.0.1:5555),
# behind basic auth: FLOWER_BASIC_AUTH="user:password" is required (run.sh makes one).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-.venv/bin/python}
if [ ! -x "$PY" ] && ! command -v "$PY" >/dev/null 2>&1; then
    echo "run_flower.sh: $PY not found: run ./run.sh once to create .venv, or set PYTHON" >&2
    exit 1
fi
# Invalid settings: python -m config prints their own sentences, and the script stops there.
settings=$("$PY" -m config --reveal FLOWER_PORT FLOWER_ADDRESS FLOWER_BASIC_AUTH) || exit 1
mapfile -t cfg <<<"$settings"
if [[ "${cfg[2]:-}" != ?*:?* ]]; then
    echo "run_flower.sh: set FLOWER_BASIC_AUTH=user:password: Flower can revoke and kill tasks, so it is never open" >&2
    exit 1
fi
# Flower reads the credentials from its environment, so they never show in `ps`.
export FLOWER_BASIC_AUTH="${cfg[2]}"
exec "$PY" -m celery -A worker.celery_app flower --port="${cfg[0]}" --address="${cfg[1]}" "$@"

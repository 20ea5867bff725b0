#!/usr/bin/env bash
# Starts one Celery worker. Run it on as many machines as you like, all with the same REDIS_URL
# and DATABASE_URL: they share the queue. Extra arguments go to `celery worker`.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
CONCURRENCY=${WORKER_CONCURRENCY:-$("$PY" -m config WORKER_CONCURRENCY)}
MAX_TASKS=${WORKER_MAX_TASKS_PER_CHILD:-$("$PY" -m config WORKER_MAX_TASKS_PER_CHILD)}
exec "$PY" -m celery -A worker.celery_app worker \
    --loglevel=INFO \
    --concurrency="$CONCURRENCY" \
    --prefetch-multiplier=1 \
    --max-tasks-per-child="$MAX_TASKS" \
    --hostname="${WORKER_NAME:-worker@%h}" \
    -E \
    "$@"

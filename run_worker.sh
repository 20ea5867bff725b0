#!/usr/bin/env bash
# Starts one Celery worker. Run it on as many machines as you like, all with the same REDIS_URL
# and DATABASE_URL: they share the queue. Extra arguments go to `celery worker`.
# The database must be at the newest schema revision (./run.sh upgrades it; alone, run
# `.venv/bin/alembic upgrade head` first): the worker refuses to start on one that is behind.
# Gossip and mingle (workers talking to each other) are off: nothing here uses them, and with
# celery 5.7 / kombu 5.7 / redis-py 8.1 gossip's restart after a Redis outage raised
# AttributeError (tests/integration/test_faults.py checks the worker's log for it).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-.venv/bin/python}
if [ ! -x "$PY" ] && ! command -v "$PY" >/dev/null 2>&1; then
    echo "run_worker.sh: $PY not found: run ./run.sh once to create .venv, or set PYTHON" >&2
    exit 1
fi
# The pool, its size, prefetch, recycling and events come from the settings through app.conf
# (worker/celery_setup.py); only what Celery has no setting for is given here.
# Invalid settings: python -m config prints their own sentences, and the script stops there.
hostname=$("$PY" -m config WORKER_NAME) || exit 1
exec "$PY" -m celery -A worker.celery_app worker \
    --loglevel=INFO \
    --hostname="$hostname" \
    --without-gossip \
    --without-mingle \
    "$@"

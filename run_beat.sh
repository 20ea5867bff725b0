#!/usr/bin/env bash
# Starts Celery beat: it sends the schedule's tick (worker.watch_tasks.tick) every
# WATCH_TICK_SECONDS, and a worker queues the re-runs of the watched companies that are due.
# Run ONE beat per deployment, as Celery documents (./run.sh starts it). A second beat by mistake
# queues no second re-run (each period is claimed in the database), only twice the ticks.
# Its schedule file (when each entry last ran) is DATA_DIR/celerybeat-schedule; the watches'
# schedule itself is in the database. Extra arguments go to `celery beat`.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-.venv/bin/python}
if [ ! -x "$PY" ] && ! command -v "$PY" >/dev/null 2>&1; then
    echo "run_beat.sh: $PY not found: run ./run.sh once to create .venv, or set PYTHON" >&2
    exit 1
fi
# Invalid settings: python -m config prints their own sentences, and the script stops there.
data_dir=$("$PY" -m config DATA_DIR) || exit 1
mkdir -p "$data_dir"
exec "$PY" -m celery -A worker.celery_app beat --loglevel=INFO "$@"

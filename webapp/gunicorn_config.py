"""gunicorn settings that are code, not flags (run_api.sh passes the flags): loaded by path,
`gunicorn --config webapp/gunicorn_config.py`, so that the master process does not import the
`webapp` package, which it never uses."""

from __future__ import annotations

import gc
from typing import Any


def post_worker_init(worker: Any) -> None:
    """Each process, before its first request: connects and compiles the hot queries (see
    `webapp.warm_up`), then moves everything loaded so far (Flask, SQLAlchemy, Celery) out of the
    garbage collector's reach: it lives as long as the process, and left in, every full collection
    walks it in the middle of some request, the first one in the first burst of submissions
    (bench/RESULTS.md)."""
    from webapp import warm_up  # here, not above: the master process never loads the app

    seconds = warm_up(worker.wsgi, threads=worker.cfg.threads)
    gc.collect()
    gc.freeze()
    worker.log.info(
        "worker %s warmed up in %.0f ms; %d objects kept out of garbage collection",
        worker.pid,
        seconds * 1000,
        gc.get_freeze_count(),
    )

"""gunicorn settings that are code, not flags (run_api.sh passes the flags): loaded by path,
`gunicorn --config webapp/gunicorn_config.py`, so that the master process does not import the
`webapp` package, which it never uses."""

from __future__ import annotations

import gc
import logging
from typing import Any

from config import Settings
from worker.log_context import JobFilter

#: gunicorn's error log format, with the job a line is about (" job <id>", or nothing).
API_LOG_FORMAT = "%(asctime)s [%(process)d] [%(levelname)s]%(job)s %(message)s"

# gunicorn believes X-Forwarded-Proto (and the other scheme and forwarder headers) from loopback
# and from any UNIX-socket client by default, so anyone on this machine could make a plain-HTTP
# request look like HTTPS. Without TRUST_PROXY nobody is believed; with it, the app's ProxyFix reads
# the one proxy's headers and gunicorn keeps its own defaults.
if not Settings().trust_proxy:
    forwarded_allow_ips = ""
    secure_scheme_headers: dict[str, str] = {}
    forwarder_headers = ""


def post_fork(server: Any, worker: Any) -> None:
    """Before the app is loaded: its own log lines (the webapp's, the worker modules' it imports)
    go through gunicorn's error log handler, with its timestamp and pid. Without a handler on the
    root logger they reach only Python's last-resort handler: warnings only, without a time."""
    root = logging.getLogger()
    for handler in worker.log.error_log.handlers:
        # gunicorn's own format, and the job a line is about, if any (`worker.log_context`).
        handler.addFilter(JobFilter())
        handler.setFormatter(
            logging.Formatter(API_LOG_FORMAT, handler.formatter.datefmt if handler.formatter else None)
        )
        root.addHandler(handler)
    root.setLevel(logging.INFO)


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

"""Every log line of the worker and the API carries its time, and the worker's the job's id."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from celery import Celery
from gunicorn.config import Config
from gunicorn.glogging import Logger

from webapp.gunicorn_config import post_fork
from worker.celery_setup import WORKER_LOG_FORMAT, JobOfTask

TIMESTAMP = re.compile(r"\[?\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d")


def formatted(format_: str, job_filter: logging.Filter) -> str:
    record = logging.LogRecord("worker.research", logging.INFO, __file__, 1, "skipped %s", ("a page",), None)
    job_filter.filter(record)
    return logging.Formatter(format_).format(record)


def test_a_worker_line_has_the_time_and_in_a_task_the_job() -> None:
    app = Celery("logging-test", set_as_current=False)

    @app.task
    def log_line() -> str:
        return formatted(WORKER_LOG_FORMAT, JobOfTask())

    in_task = log_line.apply(task_id="job-123:plan").get()
    assert TIMESTAMP.match(in_task[1:]) and "/MainProcess] job job-123 skipped a page" in in_task
    outside = formatted(WORKER_LOG_FORMAT, JobOfTask())
    assert TIMESTAMP.match(outside[1:]) and outside.endswith("/MainProcess] skipped a page")


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers[:], root.level = handlers, level


def test_the_api_s_own_lines_go_through_gunicorn_s_timestamped_error_log(
    root_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    worker = SimpleNamespace(log=Logger(Config()))
    post_fork(None, worker)
    logging.getLogger("webapp").info("Startup Reports ready")
    line = capsys.readouterr().err.strip()
    assert TIMESTAMP.match(line) and line.endswith("[INFO] Startup Reports ready")

"""Every log line of the worker and the API carries its time, and the worker's the job's id."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from celery import Celery
from flask import Flask
from flask.testing import FlaskClient
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


def test_the_research_step_s_fetch_threads_name_the_job(caplog: pytest.LogCaptureFixture) -> None:
    """No task runs in a fetch thread: the job comes from the context `write_batch` sets, copied
    into each fetch."""
    from worker.log_context import JobFilter, working_on
    from worker.research import _fetch_all

    class Failing:
        def fetch(self, url: str) -> None:
            logging.getLogger("worker.research").warning("fetching %s", url)
            raise FetchError("refused")

    from worker.sources.base import SearchResult
    from worker.sources.fetch import FetchError

    caplog.handler.addFilter(JobFilter())
    caplog.set_level(logging.INFO)
    results = [SearchResult("a", "https://a.example/", ""), SearchResult("b", "https://b.example/", "")]
    with working_on("job-42"):
        assert _fetch_all(Failing(), results) == {}
    fetch_lines = [r for r in caplog.records if r.getMessage().startswith("fetching")]
    assert len(fetch_lines) == 2 and {r.threadName.split("_")[0] for r in fetch_lines} == {"fetch"}
    assert all(r.job == " job job-42" for r in caplog.records)


def test_an_api_line_about_a_job_names_it(
    root_logger: logging.Logger, capsys: pytest.CaptureFixture[str], api_client: FlaskClient, app: Flask
) -> None:
    @app.get("/test-only/<job_id>/log")  # a route whose one job is `job_id`, as /status/<job_id>
    def log_about(job_id: str) -> str:
        logging.getLogger("webapp").warning("looked at it")
        return ""

    worker = SimpleNamespace(log=Logger(Config()))
    post_fork(None, worker)
    job_id = api_client.post("/generate", json={"startup": "Acme"}).get_json()["job_id"]
    capsys.readouterr()
    api_client.get(f"/test-only/{job_id}/log")
    api_client.get("/healthz")
    logging.getLogger("webapp").warning("about no job")
    lines = capsys.readouterr().err.strip().splitlines()
    assert any(TIMESTAMP.match(line) and line.endswith(f"[WARNING] job {job_id} looked at it") for line in lines)
    assert lines[-1].endswith("[WARNING] about no job")

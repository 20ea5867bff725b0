"""Which job a log line is about, in every thread that works on it.

A `ContextVar`, not Celery's current task: the research step's fetch threads and the web app's
request threads have no task, and the pipeline knows nothing of Celery. `write_batch` and the web
app's views of one job set it; `JobFilter`, on the worker's and the API's log handlers, writes it
into each record as `job` (" job <id>", or "" when a line is about no job)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

current_job: ContextVar[str | None] = ContextVar("current_job", default=None)


@contextmanager
def working_on(job_id: str) -> Iterator[None]:
    token = current_job.set(job_id)
    try:
        yield
    finally:
        current_job.reset(token)


class JobFilter(logging.Filter):
    """Gives every record `job` from `current_job`; lets every record through."""

    def filter(self, record: logging.LogRecord) -> bool:
        job = current_job.get()
        record.job = f" job {job}" if job else ""
        return True

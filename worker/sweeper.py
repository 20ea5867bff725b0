"""Finds jobs whose rows say queued or running but whose task Redis no longer holds (Redis was
wiped, or restarted without persistence), and queues them again. Checkpoints make that cheap: the
job resumes after its last finished step.

A job has a message in Redis for its whole life: each of its tasks' messages is in the queue until
a worker takes it, then in kombu's `unacked` hash until the task ends (late acknowledgement), a
retry's countdown included, and a task queues the next stage's before its own is acknowledged.
So a live row that has not changed for a while, and whose job has no message in either place, is
lost.

Each worker runs the sweep in a thread of its main process; a Redis lock makes one sweep at a time
across all workers.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import timedelta

import redis
from celery import Celery
from sqlalchemy import select

from worker.celery_setup import TASK_NAME, job_of_task
from worker.models import QUEUED_STATES, Job, utcnow
from worker.store import JobStore

logger = logging.getLogger(__name__)

LOCK_KEY = "startup-reports:sweep-lock"
PRIORITY_SEPARATOR = "\x06\x16"  # kombu's separator for a queue's priority lists


def _message_id(raw: bytes | str) -> str | None:
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    if isinstance(message, list):  # unacked entries are [message, exchange, routing_key]
        message = message[0] if message else {}
    headers = message.get("headers") if isinstance(message, dict) else None
    return headers.get("id") if isinstance(headers, dict) else None


def ids_held_by_broker(client: redis.Redis, queue: str) -> set[str]:
    """Ids of the jobs of every task message Redis holds: waiting in the queue, or delivered and
    not acked."""
    held: set[str] = set()
    keys = [queue, *client.scan_iter(match=f"{queue}{PRIORITY_SEPARATOR}*")]
    for key in keys:
        for raw in client.lrange(key, 0, -1):
            if message_id := _message_id(raw):
                held.add(job_of_task(message_id))
    for raw in client.hvals("unacked"):
        if message_id := _message_id(raw):
            held.add(job_of_task(message_id))
    return held


def find_lost_jobs(store: JobStore, held: set[str], grace_seconds: float) -> list[Job]:
    cutoff = utcnow() - timedelta(seconds=grace_seconds)
    with store.session() as session:
        query = select(Job).where(Job.state.in_(QUEUED_STATES), Job.updated_at < cutoff)
        return [job for job in session.scalars(query) if job.id not in held]


def sweep_lost_jobs(store: JobStore, celery: Celery, client: redis.Redis, grace_seconds: float) -> list[str]:
    """Queue again every lost job; returns their ids. One sweep at a time, across workers."""
    lock = client.lock(LOCK_KEY, timeout=60, blocking=False)
    if not lock.acquire():
        return []
    try:
        queue = celery.conf.task_default_queue or "celery"
        lost = find_lost_jobs(store, ids_held_by_broker(client, queue), grace_seconds)
        for job in lost:
            logger.warning("job %s is %s but Redis holds no task for it: queueing it again", job.id, job.state)
            store.touch(job.id)
            celery.send_task(TASK_NAME, args=[job.id], task_id=job.id)
        return [job.id for job in lost]
    finally:
        try:
            lock.release()
        except redis.RedisError:
            pass


class Sweeper(threading.Thread):
    """Every `interval` seconds until stopped: `sweep_lost_jobs`, and the cancellation of jobs
    that have asked which company they are about for longer than `question_days` (each update
    is conditional, so several workers doing it at once cancel each job once). Errors are
    logged, not fatal."""

    def __init__(
        self,
        store: JobStore,
        celery: Celery,
        client: redis.Redis,
        interval: float,
        grace: float,
        question_days: float = 7.0,
    ) -> None:
        super().__init__(name="lost-job-sweeper", daemon=True)
        self.store, self.celery, self.client = store, celery, client
        self.interval, self.grace, self.question_days = interval, grace, question_days
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                sweep_lost_jobs(self.store, self.celery, self.client, self.grace)
                for job_id in self.store.expire_questions(utcnow() - timedelta(days=self.question_days)):
                    logger.info("job %s asked which company it is about and got no answer: cancelled", job_id)
            except Exception as exc:  # Redis or the database away: try again next time
                logger.warning("lost-job sweep failed: %s", exc)

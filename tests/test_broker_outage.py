"""The worker's broker connection when Redis dies while it holds unacknowledged messages: what
celery 5.7.0 does then (`collect()`, then `close()`) must not raise (see `CollectedConnection`)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from kombu import Connection, Consumer, Exchange, Producer, Queue

from tests.conftest import RedisServer
from worker.celery_setup import CollectedConnection


def close_after_outage(connection_cls: type[Connection], directory: Path) -> None:
    server = RedisServer(directory)
    server.start()
    try:
        connection = connection_cls(f"{server.url}/0")
        channel = connection.default_channel
        queue = Queue("tasks", Exchange("tasks", "direct"), "tasks")
        Producer(channel).publish({"n": 1}, routing_key="tasks", declare=[queue])
        Consumer(channel, [queue], callbacks=[lambda body, message: None]).consume()
        connection.drain_events(timeout=5)  # delivered and not acknowledged, as with late acks
        # A second channel like the worker's remote control one, whose close needs Redis.
        control = connection.channel()
        Consumer(control, [Queue("broadcast", Exchange("broadcast", "fanout"), auto_delete=True)]).consume()
        channel._brpop_start()  # the next BRPOP is out, as between two turns of the worker's loop
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait()
        try:
            connection.collect(socket_timeout=5.0)
            connection.close()
        finally:
            channel.qos._on_collect.cancel()  # no restore attempt against the dead Redis at exit
    finally:
        server.stop()


def test_plain_kombu_connection_fails_this_way(tmp_path: Path) -> None:
    """The upstream bug, kept visible: when this starts passing, `CollectedConnection` can go."""
    with pytest.raises(AttributeError, match="hostname"):
        close_after_outage(Connection, tmp_path)


def test_collected_connection_closes_cleanly(tmp_path: Path) -> None:
    close_after_outage(CollectedConnection, tmp_path)

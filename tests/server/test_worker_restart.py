"""A worker that crashed can start again at once under the same name (or the same pid, as in a
container where it is always 1), and the names stay readable by the setup's liveness check."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from redis import Redis
from rq import Queue, Worker

from firststart.job import holder_alive
from persistence.tables import Job, JobStatus, utcnow
from worker.context import default_worker_name, unique_worker_name
from worker.rq_worker import run_worker


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _running_job(worker_name: str) -> Job:
    return Job(status=JobStatus.RUNNING, heartbeat_at=utcnow(), worker_name=worker_name)


def test_every_start_gets_its_own_name():
    assert unique_worker_name("w1") != unique_worker_name("w1")
    assert unique_worker_name("w1").startswith("w1.")
    base = default_worker_name()
    first, second = unique_worker_name(base), unique_worker_name(base)
    assert first != second and first.endswith(f"@{socket.gethostname()}:{os.getpid()}")


def test_unique_names_keep_host_and_pid_for_the_liveness_check():
    host = socket.gethostname()
    dead = unique_worker_name(f"worker@{host}:{_dead_pid()}")
    assert holder_alive(_running_job(dead), heartbeat_timeout_s=60) is False
    alive = unique_worker_name(f"worker@{host}:{os.getppid()}")
    assert holder_alive(_running_job(alive), heartbeat_timeout_s=60) is True


def test_a_worker_restarts_under_the_name_a_crashed_one_left_registered(pg_stack):
    stack = pg_stack
    connection = Redis.from_url(stack.settings.redis_url)
    queue = Queue(stack.settings.queue_name, connection=connection)
    crashed = Worker([queue], name="w1", connection=connection)
    crashed.register_birth()  # and never its death: the key outlives the process
    try:
        job = stack.submit(stack.client, "after the crash")
        run_worker(stack.settings, tracer=stack.tracer, name="w1", burst=True)
        assert stack.wait_for_status(stack.client, job["id"], "done")["graph_slug"]
    finally:
        crashed.register_death()
        connection.close()

"""Reliability with real Postgres, Redis and worker processes: a worker killed mid-trace, a
flushed Redis, Redis down when a request arrives."""

from __future__ import annotations

import signal
import time

from redis import Redis
from rq import Queue, Worker
from sqlalchemy import select

from persistence.tables import Job


def test_killed_worker_fails_the_job_within_the_heartbeat_timeout_and_retry_works(pg_stack):
    stack = pg_stack
    timeout_s = stack.settings.job_heartbeat_timeout_s
    job = stack.submit(stack.client, "a trace that takes a while")
    worker = stack.start_worker_process(steps=200, step_delay_s=0.1)  # 20 s if left alone
    stack.wait_until(lambda: stack.job(stack.client, job["id"])["progress"] > 0.02, timeout_s=30)
    running = stack.job(stack.client, job["id"])
    assert running["status"] == "running"

    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    killed_at = time.monotonic()
    failed = stack.wait_for_status(stack.client, job["id"], "failed", timeout_s=60)
    elapsed = time.monotonic() - killed_at
    # reaped one maintenance pass after the heartbeat went stale (slack for a loaded CI machine)
    assert elapsed < timeout_s + stack.settings.maintenance_interval_s + 3.0
    assert "stopped responding" in failed["error"] and "no heartbeat" in failed["error"]

    r = stack.client.post(f"/api/jobs/{job['id']}/retry")
    assert r.status_code == 202 and r.json()["attempt"] == 2
    stack.process_jobs()  # a fresh worker (RQ burst, in this process) takes the retry
    done = stack.wait_for_status(stack.client, job["id"], "done", timeout_s=30)
    assert done["graph_slug"] and done["error"] is None


def test_flushed_redis_loses_no_queued_job(pg_stack):
    stack = pg_stack
    jobs = [stack.submit(stack.client, f"prompt number {i}") for i in range(3)]
    redis = Redis.from_url(stack.settings.redis_url)
    queue = Queue(stack.settings.queue_name, connection=redis)
    assert queue.count == 3

    redis.flushdb()
    assert queue.count == 0
    # the app's maintenance loop notices within grace + interval and enqueues them again
    stack.wait_until(lambda: queue.count == 3, timeout_s=10)
    with stack.services.sessions() as session:
        attempts = session.scalars(select(Job.attempt).where(Job.id.in_([j["id"] for j in jobs]))).all()
    assert sorted(attempts) == [2, 2, 2]

    stack.process_jobs()
    for job in jobs:
        assert stack.wait_for_status(stack.client, job["id"], "done")["graph_slug"]
    assert len(stack.tracer.calls) == 3


def test_request_accepted_while_redis_is_down_runs_later(pg_stack):
    stack = pg_stack
    real_queue = stack.services.queue

    class DownQueue:
        def __getattr__(self, name):
            return getattr(real_queue, name)

        def enqueue(self, job_id, attempt):
            raise ConnectionError("redis is down")

    stack.services.queue = DownQueue()
    job = stack.submit(stack.client, "while redis was down")
    stack.services.queue = real_queue
    assert job["status"] == "queued"

    queue = Queue(stack.settings.queue_name, connection=Redis.from_url(stack.settings.redis_url))
    stack.wait_until(lambda: queue.count == 1, timeout_s=10)
    stack.process_jobs()
    assert stack.wait_for_status(stack.client, job["id"], "done")["graph_slug"]


def test_two_worker_processes_share_the_queue_without_running_a_job_twice(pg_stack):
    stack = pg_stack
    redis = Redis.from_url(stack.settings.redis_url)
    queue = Queue(stack.settings.queue_name, connection=redis)
    stack.start_worker_process(steps=4, step_delay_s=0.1)
    stack.start_worker_process(steps=4, step_delay_s=0.1)
    stack.wait_until(lambda: Worker.count(queue=queue) == 2, timeout_s=30)
    jobs = [stack.submit(stack.client, f"parallel prompt {i}") for i in range(4)]
    for job in jobs:
        stack.wait_for_status(stack.client, job["id"], "done", timeout_s=30)
    with stack.services.sessions() as session:
        rows = session.execute(select(Job.worker_name, Job.attempt)).all()
    assert all(attempt == 1 for _, attempt in rows)
    assert len({name for name, _ in rows}) == 2  # both workers took jobs
    assert stack.client.get("/api/graphs").json()["total"] == 4

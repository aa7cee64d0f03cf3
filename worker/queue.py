"""The two ways a job id reaches a worker: RQ on Redis, or threads inside the server.

Both only deliver ids; the job row in the database says what to do and whether it still
needs doing, so delivering an id twice is harmless (the second delivery finds the job
claimed and returns). The RQ job id of attempt `n` of job `j` is `j-n`.
"""

from __future__ import annotations

import logging
import queue as stdlib_queue
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from redis import Redis

log = logging.getLogger(__name__)

JOB_FUNCTION = "worker.jobs.run_trace_job"
PENDING_RQ_STATES = {"queued", "deferred", "scheduled", "created"}


def rq_job_id(job_id: str, attempt: int) -> str:
    return f"{job_id}-{attempt}"


class JobQueue(Protocol):
    def enqueue(self, job_id: str, attempt: int) -> None:
        """Hand a job to the workers (raises when the broker is down)."""

    def is_pending(self, job_id: str, attempt: int, *, stale_after_s: float) -> bool:
        """Whether the broker still holds this attempt (queued, or taken less than
        `stale_after_s` ago); False means it was lost and must be enqueued again."""

    def cancel(self, job_id: str, attempt: int) -> None:
        """Best effort: drop a queued attempt from the broker."""

    def ping(self) -> bool: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class RQJobQueue:
    """Jobs on an RQ queue; the Redis connection is passed in, never global."""

    def __init__(self, connection: Redis, name: str, *, job_timeout_s: int):
        from rq import Queue

        self.connection = connection
        self.queue = Queue(name, connection=connection)
        self.job_timeout_s = job_timeout_s

    def enqueue(self, job_id: str, attempt: int) -> None:
        self.queue.enqueue_call(
            JOB_FUNCTION,
            args=(job_id,),
            job_id=rq_job_id(job_id, attempt),
            timeout=self.job_timeout_s,
            result_ttl=3600,
            failure_ttl=86400,
            description=f"trace job {job_id} attempt {attempt}",
        )

    def is_pending(self, job_id: str, attempt: int, *, stale_after_s: float) -> bool:
        from rq.exceptions import NoSuchJobError
        from rq.job import Job

        try:
            job = Job.fetch(rq_job_id(job_id, attempt), connection=self.connection)
        except NoSuchJobError:
            return False
        status = job.get_status(refresh=False)
        if status in PENDING_RQ_STATES:
            return True
        if status == "started" and job.started_at is not None:
            started = job.started_at.replace(tzinfo=UTC) if job.started_at.tzinfo is None else job.started_at
            return datetime.now(UTC) - started < timedelta(seconds=stale_after_s)
        return False

    def cancel(self, job_id: str, attempt: int) -> None:
        from rq.job import Job

        try:
            Job.fetch(rq_job_id(job_id, attempt), connection=self.connection).cancel()
        except Exception as exc:  # the database already says "cancelled"; this only saves a dequeue
            log.debug("could not cancel RQ job %s: %s", rq_job_id(job_id, attempt), exc)

    def ping(self) -> bool:
        return bool(self.connection.ping())

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


class ThreadJobQueue:
    """Jobs run by worker threads inside this process (the embedded mode, no Redis)."""

    def __init__(self, run: Callable[[str], object], *, threads: int = 1):
        self.run = run
        self.n_threads = threads
        self.items: stdlib_queue.Queue[tuple[str, int] | None] = stdlib_queue.Queue()
        self.pending: set[tuple[str, int]] = set()
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def enqueue(self, job_id: str, attempt: int) -> None:
        with self.lock:
            self.pending.add((job_id, attempt))
        self.items.put((job_id, attempt))

    def is_pending(self, job_id: str, attempt: int, *, stale_after_s: float) -> bool:
        with self.lock:
            return (job_id, attempt) in self.pending

    def cancel(self, job_id: str, attempt: int) -> None:
        pass  # the worker thread finds the job cancelled in the database and skips it

    def ping(self) -> bool:
        return all(t.is_alive() for t in self.threads)

    def start(self) -> None:
        for i in range(self.n_threads):
            thread = threading.Thread(target=self._loop, name=f"glassbox-job-{i}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self, timeout_s: float = 5.0) -> None:
        for _ in self.threads:
            self.items.put(None)
        for thread in self.threads:
            thread.join(timeout_s)
        self.threads.clear()

    def _loop(self) -> None:
        while (item := self.items.get()) is not None:
            try:
                self.run(item[0])
            except Exception:
                log.exception("job %s failed outside its own error handling", item[0])
            finally:
                with self.lock:
                    self.pending.discard(item)

"""Recovery that servers and workers run every few seconds; safe to run in many places at once.

- Reaper: a running job whose heartbeat is older than the timeout lost its worker (killed,
  machine gone); it becomes failed with a reason and can be retried.
- Requeue: a queued job that the broker no longer holds (Redis flushed or restarted, or a
  worker died between taking and claiming it) is handed to the queue again.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from sqlalchemy import select, update

from persistence.db import SessionFactory
from persistence.tables import Job, JobStatus, utcnow
from worker.queue import JobQueue

log = logging.getLogger(__name__)


def reap_dead_jobs(sessions: SessionFactory, *, timeout_s: float) -> list[str]:
    """Mark running jobs without a recent heartbeat as failed; returns their ids."""
    cutoff = utcnow() - timedelta(seconds=timeout_s)
    reaped: list[str] = []
    with sessions() as session:
        stale = session.execute(
            select(Job.id, Job.attempt, Job.worker_name).where(
                Job.status == JobStatus.RUNNING, Job.heartbeat_at < cutoff
            )
        ).all()
        for job_id, attempt, worker_name in stale:
            reason = (
                f"the worker ({worker_name}) stopped responding: no heartbeat for {timeout_s:g} s. "
                "Retry the job to run it again."
            )
            result = session.execute(
                update(Job)
                .where(Job.id == job_id, Job.attempt == attempt, Job.status == JobStatus.RUNNING)
                .where(Job.heartbeat_at < cutoff)
                .values(status=JobStatus.FAILED, error=reason, finished_at=utcnow())
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                reaped.append(job_id)
        session.commit()
    for job_id in reaped:
        log.warning("job %s lost its worker; marked failed", job_id)
    return reaped


def requeue_lost_jobs(
    sessions: SessionFactory, queue: JobQueue, *, grace_s: float, stale_s: float
) -> list[str]:
    """Enqueue again the queued jobs the broker lost; returns their ids."""
    cutoff = utcnow() - timedelta(seconds=grace_s)
    requeued: list[str] = []
    with sessions() as session:
        queued = session.execute(
            select(Job.id, Job.attempt).where(Job.status == JobStatus.QUEUED, Job.enqueued_at < cutoff)
        ).all()
    for job_id, attempt in queued:
        if queue.is_pending(job_id, attempt, stale_after_s=stale_s):
            continue
        if _bump_attempt(sessions, job_id, attempt):
            queue.enqueue(job_id, attempt + 1)
            requeued.append(job_id)
            log.warning("job %s was lost by the queue; enqueued again", job_id)
    return requeued


def _bump_attempt(sessions: SessionFactory, job_id: str, attempt: int) -> bool:
    """Take the right to re-enqueue (only one of several maintainers wins)."""
    with sessions() as session:
        result = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.attempt == attempt, Job.status == JobStatus.QUEUED)
            .values(attempt=attempt + 1, enqueued_at=utcnow())
        )
        session.commit()
    return result.rowcount == 1  # type: ignore[attr-defined]


class MaintenanceLoop:
    """Runs the reaper and the requeue every `interval_s` in a daemon thread."""

    def __init__(
        self,
        sessions: SessionFactory,
        queue: JobQueue,
        *,
        interval_s: float,
        heartbeat_timeout_s: float,
        requeue_grace_s: float,
    ):
        self.sessions = sessions
        self.queue = queue
        self.interval_s = interval_s
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.requeue_grace_s = requeue_grace_s
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None

    def run_once(self) -> tuple[list[str], list[str]]:
        reaped = reap_dead_jobs(self.sessions, timeout_s=self.heartbeat_timeout_s)
        requeued = requeue_lost_jobs(
            self.sessions, self.queue, grace_s=self.requeue_grace_s, stale_s=self.heartbeat_timeout_s
        )
        return reaped, requeued

    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, name="glassbox-maintenance", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=10)

    def _loop(self) -> None:
        while not self.stop_event.wait(self.interval_s):
            try:
                self.run_once()
            except Exception:
                log.warning("job maintenance failed; will retry", exc_info=True)

"""The lifecycle of a job row, for every process that runs jobs: claim, heartbeat, finish, fail.

Trace and intervention jobs (worker/) and the setup job (firststart/) share it. Every write
after the claim is conditional on (job id, attempt, status running, this worker), so a worker
that was declared dead by the reaper, or whose job was cancelled or retried elsewhere, can no
longer change the job: its late result is dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from glassbox.errors import GlassboxError
from persistence.db import SessionFactory
from persistence.tables import Job, JobKind, JobStatus, Visibility, utcnow

log = logging.getLogger(__name__)

PROGRESS_WRITE_INTERVAL_S = 0.5


class JobStopped(Exception):
    """The job was cancelled, reaped or retried while this worker ran it."""


@dataclass(frozen=True)
class Claim:
    """A job this process now runs: the row's identity, its owner, and when the claim began."""

    job_id: str
    attempt: int
    worker_name: str
    owner_id: int | None = None
    model_id: int | None = None
    transcoder_set_id: int | None = None
    visibility: Visibility = Visibility.PUBLIC
    started: float = 0.0  # time.monotonic() at the claim
    kind: str = JobKind.TRACE.value

    @classmethod
    def of(cls, job: Job, worker_name: str) -> Claim:
        return cls(
            job_id=job.id,
            attempt=job.attempt,
            worker_name=worker_name,
            owner_id=job.owner_id,
            model_id=job.model_id,
            transcoder_set_id=job.transcoder_set_id,
            visibility=Visibility(job.request.get("visibility", "public")),
            started=time.monotonic(),
            kind=job.kind,
        )


# ---- claim -----------------------------------------------------------------------------------


def running_values(worker_name: str, *, now: datetime) -> dict[str, Any]:
    """The columns of a job that `worker_name` starts at `now`: running, heartbeat now, 0 %."""
    return dict(
        status=JobStatus.RUNNING,
        worker_name=worker_name,
        started_at=now,
        heartbeat_at=now,
        progress=0.0,
        phase="starting",
        error=None,
    )


def start_queued(session: Session, job_id: str, *, worker_name: str, kind: str | None = None) -> bool:
    """Move a queued job (of `kind`, if given) to running for `worker_name` in one conditional
    UPDATE, so that of two workers only one wins; False when the job was not queued."""
    stmt = update(Job).where(Job.id == job_id, Job.status == JobStatus.QUEUED)
    if kind is not None:
        stmt = stmt.where(Job.kind == kind)
    result = session.execute(stmt.values(**running_values(worker_name, now=utcnow())))
    session.commit()
    return result.rowcount == 1  # type: ignore[attr-defined]


def owned(claim: Claim) -> Any:
    """The WHERE clause that keeps a stale worker's writes out."""
    return (
        (Job.id == claim.job_id)
        & (Job.attempt == claim.attempt)
        & (Job.status == JobStatus.RUNNING)
        & (Job.worker_name == claim.worker_name)
    )


# ---- monitor ---------------------------------------------------------------------------------


class JobMonitor:
    """A thread that writes heartbeats and progress, notices when the job was taken away, and
    fails the job once it runs past `timeout_s` (in worker threads no signal can stop it).

    `progress(phase, fraction)` is the callback given to the work: it only records the values
    (cheap), and raises JobStopped once the job is no longer this worker's.
    """

    def __init__(
        self,
        sessions: SessionFactory,
        claim: Claim,
        *,
        heartbeat_interval_s: float,
        timeout_s: float,
        what: str = "trace",
    ):
        self.sessions = sessions
        self.claim = claim
        self.heartbeat_interval_s = heartbeat_interval_s
        self.timeout_s = timeout_s
        self.what = what
        self.latest: tuple[str, float] | None = None
        self.written: tuple[str, float] | None = None
        self.stopped = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=f"heartbeat-{claim.job_id}", daemon=True)

    def __enter__(self) -> JobMonitor:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()

    def progress(self, phase: str, fraction: float) -> None:
        if self.stopped.is_set():
            raise JobStopped(self.claim.job_id)
        self.latest = (str(phase)[:64], min(max(float(fraction), 0.0), 1.0))

    def _loop(self) -> None:
        tick = min(PROGRESS_WRITE_INTERVAL_S, self.heartbeat_interval_s)
        last_beat = time.monotonic()
        while not self.done.wait(tick):
            if time.monotonic() - self.claim.started > self.timeout_s:
                fail_job(self.sessions, self.claim, timeout_message(self.what, self.timeout_s))
                self.stopped.set()
                return
            due = time.monotonic() - last_beat >= self.heartbeat_interval_s
            if not due and self.latest == self.written:
                continue
            try:
                alive = self._write()
            except Exception:
                log.warning("heartbeat of job %s failed", self.claim.job_id, exc_info=True)
                continue
            last_beat = time.monotonic()
            if not alive:
                self.stopped.set()
                return

    def _write(self) -> bool:
        values: dict[str, Any] = {"heartbeat_at": utcnow()}
        latest = self.latest
        if latest is not None:
            values["phase"], values["progress"] = latest
        with self.sessions() as session:
            result = session.execute(update(Job).where(owned(self.claim)).values(**values))
            session.commit()
        self.written = latest
        return result.rowcount == 1  # type: ignore[attr-defined]


# ---- finish ----------------------------------------------------------------------------------


def done_values(claim: Claim, **values: Any) -> dict[str, Any]:
    """The columns of a job that finished now, updated with `values` (e.g. its graph or result)."""
    columns: dict[str, Any] = dict(
        status=JobStatus.DONE,
        progress=1.0,
        phase="done",
        finished_at=utcnow(),
        duration_s=time.monotonic() - claim.started,
    )
    return columns | values


def finish_job(sessions: SessionFactory, claim: Claim, **values: Any) -> bool:
    """Mark the job done with `values` (e.g. result=...); False if the job was taken away."""
    with sessions() as session:
        done = session.execute(update(Job).where(owned(claim)).values(**done_values(claim, **values)))
        session.commit()
    if done.rowcount != 1:  # type: ignore[attr-defined]
        log.warning("job %s was taken from this worker; its result is dropped", claim.job_id)
        return False
    return True


def fail_job(sessions: SessionFactory, claim: Claim, reason: str) -> None:
    with sessions() as session:
        session.execute(
            update(Job)
            .where(owned(claim))
            .values(
                status=JobStatus.FAILED,
                error=reason,
                finished_at=utcnow(),
                duration_s=time.monotonic() - claim.started,
            )
        )
        session.commit()
    log.info("job %s failed: %s", claim.job_id, reason)


def timeout_message(what: str, timeout_s: float) -> str:
    return f"the {what} took longer than the {timeout_s:g} s limit"


def failure_reason(exc: BaseException, *, what: str, timeout_s: float) -> str:
    """What the user reads: the engine's message for bad input, a short note otherwise."""
    if type(exc).__name__ == "JobTimeoutException":  # RQ's own timeout
        return timeout_message(what, timeout_s)
    if isinstance(exc, GlassboxError):
        return str(exc)[:2000]
    log.error("%s failed", what, exc_info=exc)
    return f"internal error during the {what} ({type(exc).__name__}: {exc})"[:2000]

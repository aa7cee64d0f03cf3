"""The setup as a row of the jobs table: visible with the trace jobs, with progress and errors.

The row is an ordinary `Job` of kind "setup" (beside "trace" and "intervention") whose request
holds the plan and the state of every step. Its request key is fixed, so the database's index
on active request keys allows one queued or running setup at a time, across every process.

Claiming: a process creates the row, or takes over the newest unfinished one (next attempt),
unless a live process holds it. While it runs, the job lifecycle of every job
(persistence.jobs: `JobMonitor` heartbeats and progress, conditional writes, fail, finish)
applies, so the reaper, cancel (`POST /api/jobs/{id}/cancel`) and the metrics treat it like
any job; the setup only adds its steps' states to the row. It leaves `duration_s` empty: it
is not a trace and stays out of the trace-duration histogram (its step times are in the
request).
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from firststart.engine import EngineHooks
from firststart.pipeline import StepState, run_pipeline
from firststart.plan import SetupPlan
from firststart.steps import SetupContext, build_steps
from persistence.db import SessionFactory
from persistence.jobs import (
    Claim,
    JobMonitor,
    JobStopped,
    fail_job,
    failure_reason,
    finish_job,
    owned,
    running_values,
    start_queued,
)
from persistence.tables import Job, JobStatus, utcnow

log = logging.getLogger(__name__)

SETUP_KIND = "setup"
REQUEST_KEY = hashlib.sha256(b"glassbox:setup").hexdigest()
LOG_EVERY_S = 15.0
INTERRUPTED = "interrupted: the server stopped during the setup; it resumes at the next start"


class SetupInterrupted(Exception):
    """The process is shutting down; the setup stops at its next progress report."""


def setup_request(plan: SetupPlan, steps: list[StepState] | None = None) -> dict[str, Any]:
    """The job's request: what the jobs list shows, the plan, and each step's state."""
    return {
        "prompt": f"Setup: {plan.model_name} with transcoders {plan.transcoders_name}, featured graphs",
        "model": plan.model_name,
        "transcoders": plan.transcoders_name,
        "slug": "",
        "plan": plan.to_dict(),
        "steps": [s.to_dict() for s in steps or []],
    }


def latest_setup_job(session: Any) -> Job | None:
    return session.scalar(
        select(Job).where(Job.kind == SETUP_KIND).order_by(Job.created_at.desc(), Job.id).limit(1)
    )


# ---- claiming --------------------------------------------------------------------------------


def holder_alive(job: Job, *, heartbeat_timeout_s: float) -> bool:
    """Whether the process running `job` is alive: a recent heartbeat, and (on this machine)
    its process still exists, so a server killed and restarted at once can take over."""
    if job.status != JobStatus.RUNNING or job.heartbeat_at is None:
        return False
    if (utcnow() - job.heartbeat_at).total_seconds() > heartbeat_timeout_s:
        return False
    host, _, pid = (job.worker_name or "").rpartition("@")[2].rpartition(":")
    if host == socket.gethostname() and pid.isdigit() and int(pid) != os.getpid():
        return _pid_alive(int(pid))
    return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim_setup_job(
    sessions: SessionFactory, plan: SetupPlan, *, worker_name: str, heartbeat_timeout_s: float
) -> Claim | None:
    """Create the setup job, or take over the newest unfinished one, running for `worker_name`;
    None when another live process has it."""
    with sessions() as session:
        job = latest_setup_job(session)
        if (
            job is not None
            and job.status != JobStatus.DONE
            and holder_alive(job, heartbeat_timeout_s=heartbeat_timeout_s)
            and job.worker_name != worker_name
        ):
            log.info("setup job %s is run by %s", job.id, job.worker_name)
            return None
        now = utcnow()
        running = dict(
            **running_values(worker_name, now=now),
            finished_at=None,
            duration_s=None,
            request=setup_request(plan),
        )
        try:
            if job is None or job.status == JobStatus.DONE:
                job = Job(
                    id=uuid.uuid4().hex,
                    kind=SETUP_KIND,
                    request_key=REQUEST_KEY,
                    attempt=1,
                    enqueued_at=now,
                    **running,
                )
                session.add(job)
            else:
                result = session.execute(
                    update(Job)
                    .where(Job.id == job.id, Job.attempt == job.attempt, Job.status == job.status)
                    .values(attempt=job.attempt + 1, **running)
                )
                if result.rowcount != 1:  # type: ignore[attr-defined]
                    session.rollback()
                    return None
            session.commit()
        except IntegrityError:  # another process created or took it at the same moment
            session.rollback()
            return None
        session.refresh(job)
        return _claim_of(job, worker_name)


def claim_queued_setup_job(sessions: SessionFactory, job_id: str, *, worker_name: str) -> Claim | None:
    """Move a queued setup job (one retried through the API) to running, for a queue worker."""
    with sessions() as session:
        if not start_queued(session, job_id, worker_name=worker_name, kind=SETUP_KIND):
            return None
        job = session.get(Job, job_id)
        return _claim_of(job, worker_name) if job is not None else None


def _claim_of(job: Job, worker_name: str) -> Claim:
    return Claim(
        job_id=job.id, attempt=job.attempt, worker_name=worker_name, started=time.monotonic(), kind=SETUP_KIND
    )


def plan_of_job(sessions: SessionFactory, job_id: str) -> SetupPlan:
    with sessions() as session:
        job = session.get(Job, job_id)
        if job is None or job.kind != SETUP_KIND:
            raise LookupError(f"job {job_id} is not a setup job")
        return SetupPlan.from_dict(job.request["plan"])


def is_setup_job(sessions: SessionFactory, job_id: str) -> bool:
    """Whether job `job_id` is a setup job (queue workers dispatch on this)."""
    with sessions() as session:
        return session.scalar(select(Job.kind).where(Job.id == job_id)) == SETUP_KIND


def run_setup_job(context: Any, job_id: str) -> str:
    """The job function for a setup job taken from a queue (a retry through the API):
    `context` is the worker's WorkerContext. A no-op if the job is not queued."""
    from firststart.engine import default_hooks
    from glassbox.home import glassbox_home

    claim = claim_queued_setup_job(context.sessions, job_id, worker_name=context.name)
    if claim is None:
        return "skipped"
    return execute_setup(
        claim,
        plan_of_job(context.sessions, job_id),
        sessions=context.sessions,
        hooks=default_hooks(),
        home=glassbox_home(),
        heartbeat_interval_s=context.settings.job_heartbeat_interval_s,
        timeout_s=context.settings.setup_timeout_s,
    )


# ---- running ---------------------------------------------------------------------------------


def execute_setup(
    claim: Claim,
    plan: SetupPlan,
    *,
    sessions: SessionFactory,
    hooks: EngineHooks,
    home: Path,
    heartbeat_interval_s: float,
    timeout_s: float,
    stop: threading.Event | None = None,
) -> str:
    """Run the pipeline for a claimed setup job; returns "done", "failed" or "stopped"."""
    ctx = SetupContext(plan=plan, sessions=sessions, hooks=hooks, home=home)
    monitor = JobMonitor(
        sessions, claim, heartbeat_interval_s=heartbeat_interval_s, timeout_s=timeout_s, what="setup"
    )
    reporter = _Reporter(sessions, claim, plan, monitor.progress, stop)
    what = setup_request(plan)["prompt"]
    log.info("setup job %s started (attempt %d): %s", claim.job_id, claim.attempt, what)
    with monitor:
        try:
            states = run_pipeline(build_steps(ctx), report=reporter)
        except JobStopped:
            log.info("setup job %s was cancelled or taken over", claim.job_id)
            return "stopped"
        except SetupInterrupted:
            fail_job(sessions, claim, INTERRUPTED)
            return "stopped"
        except Exception as exc:
            reporter.write_steps()
            fail_job(sessions, claim, failure_reason(exc, what="setup", timeout_s=timeout_s))
            log.error("setup job %s failed: %s", claim.job_id, exc)
            return "failed"
        finally:
            ctx.release()
    return "done" if _finish(sessions, claim, plan, states) else "stopped"


def _finish(sessions: SessionFactory, claim: Claim, plan: SetupPlan, states: list[StepState]) -> bool:
    """Done, with every step's state; `duration_s` stays empty (not a trace: out of its histogram)."""
    steps = [s.to_dict() for s in states]
    ok = finish_job(
        sessions, claim, request=setup_request(plan, states), result={"steps": steps}, duration_s=None
    )
    if ok:
        log.info("setup job %s done: the demo content is ready", claim.job_id)
    return ok


class _Reporter:
    """The pipeline's report: job progress (through the monitor), step states in the row when
    they change (a status, or a step's first measured progress, which the time left is paced
    by), and a log line on every step change and every LOG_EVERY_S seconds."""

    def __init__(
        self,
        sessions: SessionFactory,
        claim: Claim,
        plan: SetupPlan,
        progress: Callable[[str, float], None],
        stop: threading.Event | None,
    ):
        self.sessions, self.claim, self.plan = sessions, claim, plan
        self.progress, self.stop = progress, stop
        self.states: list[StepState] = []
        self.written: list[tuple[str, str, bool]] = []
        self.logged_at = 0.0

    def __call__(self, fraction: float, phase: str, states: list[StepState]) -> None:
        if self.stop is not None and self.stop.is_set():
            raise SetupInterrupted(self.claim.job_id)
        self.progress(phase, fraction)
        self.states = states
        changed = _written_key(states) != self.written
        if changed:
            self.write_steps()
        if changed or time.monotonic() - self.logged_at > LOG_EVERY_S:
            log.info("setup %3.0f%%  %s", 100 * fraction, phase)
            self.logged_at = time.monotonic()

    def write_steps(self) -> None:
        """Save every step's state in the job's request (only while the job is ours)."""
        with self.sessions() as session:
            session.execute(
                update(Job).where(owned(self.claim)).values(request=setup_request(self.plan, self.states))
            )
            session.commit()
        self.written = _written_key(self.states)


def _written_key(states: list[StepState]) -> list[tuple[str, str, bool]]:
    return [(s.name, s.status, s.paced_at is not None) for s in states]

"""The lifecycle of one job inside a worker: claim, monitor, trace (or run the interventions of
an intervention job), finish or fail.

Every write after the claim is conditional on (job id, attempt, status running, this worker),
so a worker that was declared dead by the reaper, or whose job was cancelled or retried
elsewhere, can no longer change the job: its late result is dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from glassbox.errors import GlassboxError
from server.db import SessionFactory
from server.services.common import new_slug
from server.services.graphs import GraphOrigin, free_slug, store_graph
from server.tables import (
    GraphSource,
    Job,
    JobKind,
    JobStatus,
    ModelEntry,
    TranscoderSetEntry,
    Visibility,
    utcnow,
)
from worker.context import WorkerContext
from worker.interventions import InterventionSpec
from worker.tracing import TraceOutput, Tracer, TraceSpec

log = logging.getLogger(__name__)

PROGRESS_WRITE_INTERVAL_S = 0.5


class JobStopped(Exception):
    """The job was cancelled, reaped or retried while this worker ran it."""


@dataclass(frozen=True)
class Claim:
    job_id: str
    attempt: int
    worker_name: str
    spec: TraceSpec | InterventionSpec
    owner_id: int | None
    model_id: int | None
    transcoder_set_id: int | None
    visibility: Visibility
    started: float  # time.monotonic() at the claim
    kind: str = JobKind.TRACE.value


def run_trace(ctx: WorkerContext, job_id: str) -> str:
    """Run job `job_id` if it is still queued; returns what happened, for logs."""
    claim = claim_job(ctx.sessions, job_id, worker_name=ctx.name)
    if claim is None:
        return "skipped"
    settings = ctx.settings
    monitor = JobMonitor(
        ctx.sessions,
        claim,
        heartbeat_interval_s=settings.job_heartbeat_interval_s,
        timeout_s=settings.job_timeout_s,
    )
    with monitor:
        try:
            if isinstance(claim.spec, InterventionSpec):
                result = intervene(ctx.tracer, claim.spec, monitor.progress)
                return "done" if complete_result(ctx.sessions, claim, result) else "stopped"
            output = ctx.tracer(claim.spec, monitor.progress)
            return "done" if complete_job(ctx.sessions, claim, output) else "stopped"
        except JobStopped:
            log.info("job %s stopped while running", job_id)
            return "stopped"
        except Exception as exc:
            fail_job(ctx.sessions, claim, failure_reason(exc, ctx.settings.job_timeout_s))
            return "failed"


def intervene(tracer: Tracer, spec: InterventionSpec, progress: Any) -> dict[str, Any]:
    """Run an intervention job with the tracer's engine (tracers without one cannot)."""
    run = getattr(tracer, "intervene", None)
    if run is None:
        raise GlassboxError("this worker has no engine for interventions")
    return run(spec, progress)


def failure_reason(exc: BaseException, timeout_s: int) -> str:
    """What the user reads: the engine's message for bad input, a short note otherwise."""
    if type(exc).__name__ == "JobTimeoutException":
        return f"the trace took longer than the {timeout_s} s limit"
    if isinstance(exc, GlassboxError):
        return str(exc)
    log.error("trace failed", exc_info=exc)
    return f"internal error during the trace ({type(exc).__name__}: {exc})"[:2000]


# ---- claim ---------------------------------------------------------------------------------


def claim_job(sessions: SessionFactory, job_id: str, *, worker_name: str) -> Claim | None:
    """Move the job from queued to running for this worker, or None if someone else has it."""
    with sessions() as session:
        if not start_queued(session, job_id, worker_name=worker_name):
            log.info("job %s is no longer queued; skipping", job_id)
            return None
        job = session.get(Job, job_id)
        if job is None:
            return None
        try:
            spec = _spec_for(session, job)
        except LookupError as exc:
            job.status, job.error, job.finished_at = JobStatus.FAILED, str(exc), utcnow()
            session.commit()
            return None
        return Claim(
            job_id=job.id,
            attempt=job.attempt,
            worker_name=worker_name,
            spec=spec,
            owner_id=job.owner_id,
            model_id=job.model_id,
            transcoder_set_id=job.transcoder_set_id,
            visibility=Visibility(job.request.get("visibility", "public")),
            started=time.monotonic(),
            kind=job.kind,
        )


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


def _spec_for(session: Session, job: Job) -> TraceSpec | InterventionSpec:
    model = session.get(ModelEntry, job.model_id) if job.model_id is not None else None
    tset = session.get(TranscoderSetEntry, job.transcoder_set_id) if job.transcoder_set_id else None
    if model is None or tset is None:
        raise LookupError("the model or transcoder set of this job was removed")
    request: dict[str, Any] = job.request
    if job.kind == JobKind.INTERVENTION:
        return InterventionSpec(
            prompt=request["prompt"],
            model_source=model.source,
            transcoders_source=tset.source,
            interventions=list(request.get("interventions", [])),
            max_new_tokens=int(request.get("max_new_tokens", 20)),
            constrained=bool(request.get("constrained", False)),
            top_k=int(request.get("top_k", 10)),
        )
    return TraceSpec(
        prompt=request["prompt"],
        model_name=model.name,
        model_source=model.source,
        transcoders_name=tset.name,
        transcoders_source=tset.source,
        slug=request["slug"],
        params=dict(request.get("params", {})),
    )


def owned(claim: Claim) -> Any:
    """The WHERE clause that keeps a stale worker's writes out."""
    return (
        (Job.id == claim.job_id)
        & (Job.attempt == claim.attempt)
        & (Job.status == JobStatus.RUNNING)
        & (Job.worker_name == claim.worker_name)
    )


# ---- monitor -------------------------------------------------------------------------------


class JobMonitor:
    """A thread that writes heartbeats and progress, notices when the job was taken away, and
    fails the job once it runs past `timeout_s` (in worker threads no signal can stop it).

    `progress(phase, fraction)` is the callback given to the tracer: it only records the
    values (cheap), and raises JobStopped once the job is no longer this worker's.
    """

    def __init__(
        self, sessions: SessionFactory, claim: Claim, *, heartbeat_interval_s: float, timeout_s: float
    ):
        self.sessions = sessions
        self.claim = claim
        self.heartbeat_interval_s = heartbeat_interval_s
        self.timeout_s = timeout_s
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
                fail_job(
                    self.sessions, self.claim, f"the trace took longer than the {self.timeout_s:g} s limit"
                )
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


# ---- finish --------------------------------------------------------------------------------


def complete_job(sessions: SessionFactory, claim: Claim, output: TraceOutput) -> bool:
    """Store the graph and mark the job done, in one transaction; False if the job was lost."""
    if not isinstance(claim.spec, TraceSpec):
        raise TypeError("complete_job stores the graphs of trace jobs only")
    try:
        return _complete(sessions, claim, output, claim.spec.slug)
    except IntegrityError:  # another graph took the slug between the check and the insert
        return _complete(sessions, claim, output, new_slug(claim.spec.slug[:80]))


def complete_result(sessions: SessionFactory, claim: Claim, result: dict[str, Any]) -> bool:
    """Store a non-trace job's result and mark it done; False if the job was lost."""
    with sessions() as session:
        done = session.execute(
            update(Job)
            .where(owned(claim))
            .values(
                status=JobStatus.DONE,
                result=result,
                progress=1.0,
                phase="done",
                finished_at=utcnow(),
                duration_s=time.monotonic() - claim.started,
            )
        )
        session.commit()
    if done.rowcount != 1:  # type: ignore[attr-defined]
        log.warning("job %s was taken from this worker; its result is dropped", claim.job_id)
        return False
    return True


def _complete(sessions: SessionFactory, claim: Claim, output: TraceOutput, wanted_slug: str) -> bool:
    with sessions() as session:
        slug = free_slug(session, wanted_slug)
        origin = GraphOrigin(
            source=GraphSource.TRACE,
            owner_id=claim.owner_id,
            visibility=claim.visibility,
            model_id=claim.model_id,
            transcoder_set_id=claim.transcoder_set_id,
            parameters=claim.spec.params,
            replacement_score=output.replacement_score,
            completeness_score=output.completeness_score,
        )
        record = store_graph(session, output.graph_json, slug=slug, origin=origin)
        result = session.execute(
            update(Job)
            .where(owned(claim))
            .values(
                status=JobStatus.DONE,
                graph_id=record.id,
                progress=1.0,
                phase="done",
                finished_at=utcnow(),
                duration_s=time.monotonic() - claim.started,
            )
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            session.rollback()
            log.warning("job %s was taken from this worker; its graph is dropped", claim.job_id)
            return False
        session.commit()
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

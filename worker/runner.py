"""One trace or intervention job inside a worker: claim, monitor, run the engine, store, or fail.

The job row's lifecycle (claim, heartbeats, finish, fail; every write conditional on the
claim) is persistence.jobs; this module adds what a trace job needs: its spec, read from the
job's request and the registry, and storing its graph.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from glassbox.errors import GlassboxError
from persistence.db import SessionFactory
from persistence.graphs import GraphOrigin, free_slug, new_slug, store_graph
from persistence.jobs import (
    Claim,
    JobMonitor,
    JobStopped,
    done_values,
    fail_job,
    failure_reason,
    finish_job,
    owned,
    start_queued,
)
from persistence.tables import GraphSource, Job, JobKind, JobStatus, ModelEntry, TranscoderSetEntry, utcnow
from worker.context import WorkerContext
from worker.interventions import InterventionSpec
from worker.tracing import TraceOutput, Tracer, TraceSpec

log = logging.getLogger(__name__)

Spec = TraceSpec | InterventionSpec


def run_trace(ctx: WorkerContext, job_id: str) -> str:
    """Run job `job_id` if it is still queued; returns what happened, for logs."""
    claimed = claim_job(ctx.sessions, job_id, worker_name=ctx.name)
    if claimed is None:
        return "skipped"
    claim, spec = claimed
    settings = ctx.settings
    monitor = JobMonitor(
        ctx.sessions,
        claim,
        heartbeat_interval_s=settings.job_heartbeat_interval_s,
        timeout_s=settings.job_timeout_s,
    )
    with monitor:
        try:
            if isinstance(spec, InterventionSpec):
                result = intervene(ctx.tracer, spec, monitor.progress)
                return "done" if finish_job(ctx.sessions, claim, result=result) else "stopped"
            output = ctx.tracer(spec, monitor.progress)
            t_store = time.perf_counter()
            if not complete_job(ctx.sessions, claim, spec, output):
                return "stopped"
            _log_done(claim, output, store_s=time.perf_counter() - t_store)
            return "done"
        except JobStopped:
            log.info("job %s stopped while running", job_id)
            return "stopped"
        except Exception as exc:
            reason = failure_reason(exc, what="trace", timeout_s=settings.job_timeout_s)
            fail_job(ctx.sessions, claim, reason)
            return "failed"


def _log_done(claim: Claim, output: TraceOutput, *, store_s: float) -> None:
    """One line per finished trace with where its time went (JSON logs carry `timings`)."""
    timings = {k: round(v, 3) for k, v in {**output.timings, "store_s": store_s}.items()}
    total = time.monotonic() - claim.started
    steps = ", ".join(f"{k.removesuffix('_s')} {v:.2f} s" for k, v in timings.items())
    log.info("trace job %s done in %.2f s (%s)", claim.job_id, total, steps,
             extra={"job_id": claim.job_id, "timings": timings, "run_s": round(total, 3)})


def intervene(tracer: Tracer, spec: InterventionSpec, progress: Any) -> dict[str, Any]:
    """Run an intervention job with the tracer's engine (tracers without one cannot)."""
    run = getattr(tracer, "intervene", None)
    if run is None:
        raise GlassboxError("this worker has no engine for interventions")
    return run(spec, progress)


# ---- claim ---------------------------------------------------------------------------------


def claim_job(sessions: SessionFactory, job_id: str, *, worker_name: str) -> tuple[Claim, Spec] | None:
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
        return Claim.of(job, worker_name), spec


def _spec_for(session: Session, job: Job) -> Spec:
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


# ---- finish --------------------------------------------------------------------------------


def complete_job(sessions: SessionFactory, claim: Claim, spec: TraceSpec, output: TraceOutput) -> bool:
    """Store the graph and mark the job done, in one transaction; False if the job was lost."""
    try:
        return _complete(sessions, claim, spec, output, spec.slug)
    except IntegrityError:  # another graph took the slug between the check and the insert
        return _complete(sessions, claim, spec, output, new_slug(spec.slug[:80]))


def _complete(
    sessions: SessionFactory, claim: Claim, spec: TraceSpec, output: TraceOutput, wanted_slug: str
) -> bool:
    with sessions() as session:
        slug = free_slug(session, wanted_slug)
        origin = GraphOrigin(
            source=GraphSource.TRACE,
            owner_id=claim.owner_id,
            visibility=claim.visibility,
            model_id=claim.model_id,
            transcoder_set_id=claim.transcoder_set_id,
            parameters=spec.params,
            replacement_score=output.replacement_score,
            completeness_score=output.completeness_score,
        )
        record = store_graph(session, output.graph_json, slug=slug, origin=origin)
        done = done_values(claim, graph_id=record.id)
        result = session.execute(update(Job).where(owned(claim)).values(**done))
        if result.rowcount != 1:  # type: ignore[attr-defined]
            session.rollback()
            log.warning("job %s was taken from this worker; its graph is dropped", claim.job_id)
            return False
        session.commit()
        return True

"""Trace jobs from the API's side: create (with deduplication), read, cancel, retry; and the
submission (deduplicate, store, enqueue) that intervention jobs share.

The row is committed before the id goes to the queue, so an accepted request survives a
Redis outage: if the enqueue fails, the maintenance loop enqueues it later.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

from persistence import registry
from persistence.errors import Conflict, NotFound, Unprocessable
from persistence.graphs import check_user_slug, new_slug
from persistence.tables import Job, JobKind, JobStatus, User, utcnow
from server.schemas import TraceCreate
from server.services.common import is_owner_or_admin
from server.services.graphs import slug_taken
from server.services.preview import PreviewService
from worker.queue import JobQueue

log = logging.getLogger(__name__)

ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


@dataclass(frozen=True)
class Submitted:
    job: Job
    deduplicated: bool


def request_key(*, owner_id: int, model_id: int, transcoder_set_id: int, prompt: str, params: dict) -> str:
    """Identical requests (same user, model, transcoders, prompt and options) share one key."""
    canonical = json.dumps(
        {"o": owner_id, "m": model_id, "t": transcoder_set_id, "p": prompt, "q": params},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def submit_trace(
    session: Session,
    queue: JobQueue,
    preview: PreviewService,
    user: User,
    request: TraceCreate,
    *,
    max_feature_nodes_limit: int,
    charge: Callable[[], None] | None = None,
) -> Submitted:
    """Accept a trace request: validate, deduplicate, store, enqueue. `charge` (the rate limit)
    runs only when a new job is made."""
    model = registry.get_model(session, request.model, error=Unprocessable)
    tset = registry.get_transcoder_set(session, model, request.transcoders, error=Unprocessable)
    params = request.params.model_dump()
    if "max_feature_nodes" not in request.params.model_fields_set:  # the default stays within the limit
        params["max_feature_nodes"] = min(params["max_feature_nodes"], max_feature_nodes_limit)
    if params["max_feature_nodes"] is not None and params["max_feature_nodes"] > max_feature_nodes_limit:
        raise Unprocessable(f"params.max_feature_nodes may be at most {max_feature_nodes_limit}")
    messages = None if request.messages is None else [m.model_dump() for m in request.messages]
    if messages is not None and preview.chat_template(model.source) is False:
        raise Unprocessable(f"model {model.name!r} has no chat template; give a plain prompt")
    key = request_key(
        owner_id=user.id,
        model_id=model.id,
        transcoder_set_id=tset.id,
        prompt=request.prompt if messages is None else json.dumps(messages, sort_keys=True),
        params=params,
    )

    if request.slug is not None:
        check_user_slug(request.slug)

    def build() -> Job:  # after the rate limit: tokenizing the prompt costs the server time
        prompt = request.prompt
        if messages is not None:
            prompt = preview.chat_prompt(model.source, model.name, messages)
        preview.check_prompt(model.source, prompt)
        _check_targets(preview, model.source, params.get("logit_diff"))
        if request.slug is not None and (
            slug_taken(session, request.slug) or _slug_reserved(session, request.slug)
        ):
            raise Conflict(f"the slug {request.slug!r} is taken")
        return new_job(
            kind=JobKind.TRACE,
            key=key,
            request={
                "prompt": prompt,
                "params": params,
                "model": model.name,
                "transcoders": tset.name,
                "slug": request.slug or new_slug(model.name, prompt[:40]),
                "visibility": request.visibility.value,
            },
            model_id=model.id,
            transcoder_set_id=tset.id,
            owner_id=user.id,
        )

    return submit_job(session, queue, key=key, output=Job.graph_id, build=build, charge=charge)


def _check_targets(preview: PreviewService, source: str, logit_diff: dict[str, str] | None) -> None:
    """A custom target's tokens must be one token each: a 422 now rather than a failed job."""
    if logit_diff is None:
        return
    for side in ("plus", "minus"):
        problem = preview.target_tokens(source, logit_diff[side]).problem
        if problem is not None:
            raise Unprocessable(f"params.logit_diff.{side} {logit_diff[side]!r} is {problem}")


def submit_job(
    session: Session,
    queue: JobQueue,
    *,
    key: str,
    output: InstrumentedAttribute[Any],
    build: Callable[[], Job],
    charge: Callable[[], None] | None = None,
) -> Submitted:
    """Answer with the job of an identical request if there is one; else call `charge` (the
    rate limit, which may refuse: an identical request costs nothing), store the job that
    `build` makes (it may still refuse the request) and enqueue it.

    `output` is the column that holds a finished job's product (`graph_id`, `result`): a
    finished job is reused only while its product is there.
    """
    existing = find_duplicate(session, key, output=output)
    if existing is not None:
        return Submitted(existing, True)
    if charge is not None:
        charge()
    job = build()
    session.add(job)
    try:
        session.commit()
    except IntegrityError:  # an identical request won the race for the active-key index
        session.rollback()
        existing = find_duplicate(session, key, output=output)
        if existing is None:
            raise
        return Submitted(existing, True)
    enqueue(queue, job)
    return Submitted(job, False)


def new_job(
    *,
    kind: JobKind,
    key: str,
    request: dict[str, Any],
    model_id: int | None,
    transcoder_set_id: int | None,
    owner_id: int,
) -> Job:
    """A queued first attempt, not yet stored."""
    return Job(
        id=uuid.uuid4().hex,
        kind=kind.value,
        status=JobStatus.QUEUED,
        request_key=key,
        request=request,
        model_id=model_id,
        transcoder_set_id=transcoder_set_id,
        owner_id=owner_id,
        attempt=1,
    )


def find_duplicate(session: Session, key: str, *, output: InstrumentedAttribute[Any]) -> Job | None:
    """An active job with this key, else the newest finished one whose `output` is still set
    (a trace's graph may have been deleted since)."""
    active = session.scalar(select(Job).where(Job.request_key == key, Job.status.in_(ACTIVE)))
    if active is not None:
        return active
    return session.scalar(
        select(Job)
        .where(Job.request_key == key, Job.status == JobStatus.DONE, output.is_not(None))
        .order_by(Job.finished_at.desc())
        .limit(1)
    )


def _slug_reserved(session: Session, slug: str) -> bool:
    active = session.scalars(select(Job.request).where(Job.status.in_(ACTIVE))).all()
    return any(r.get("slug") == slug for r in active)


def enqueue(queue: JobQueue, job: Job) -> None:
    """Hand the job to the queue; when the broker is down, maintenance enqueues it later."""
    try:
        queue.enqueue(job.id, job.attempt)
    except Exception:
        log.warning("could not enqueue job %s now; maintenance will retry", job.id, exc_info=True)


def get_job(session: Session, job_id: str, user: User | None) -> Job:
    """A job, visible to its owner and administrators only."""
    job = session.get(Job, job_id)
    if job is None or not is_owner_or_admin(job.owner_id, user):
        raise NotFound(f"job {job_id!r} not found")
    return job


def list_jobs(
    session: Session, user: User, *, status: JobStatus | None, limit: int, offset: int
) -> list[Job]:
    stmt = select(Job).where(Job.owner_id == user.id)
    if status is not None:
        stmt = stmt.where(Job.status == status)
    return list(session.scalars(stmt.order_by(Job.created_at.desc()).limit(limit).offset(offset)))


def cancel_job(session: Session, queue: JobQueue, job_id: str, user: User) -> Job:
    job = get_job(session, job_id, user)
    result = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status.in_(ACTIVE))
        .values(status=JobStatus.CANCELLED, error="cancelled by the user", finished_at=utcnow())
    )
    session.commit()
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(job)
        raise Conflict(f"job {job.id} is {job.status.value}; only queued or running jobs can be cancelled")
    session.refresh(job)
    queue.cancel(job.id, job.attempt)
    return job


def retry_job(session: Session, queue: JobQueue, job_id: str, user: User) -> Job:
    """Run a failed or cancelled job again (same id, next attempt)."""
    job = get_job(session, job_id, user)
    if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise Conflict(f"job {job.id} is {job.status.value}; only failed or cancelled jobs can be retried")
    result = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status.in_((JobStatus.FAILED, JobStatus.CANCELLED)))
        .values(
            status=JobStatus.QUEUED,
            attempt=Job.attempt + 1,
            error=None,
            progress=0.0,
            phase=None,
            worker_name=None,
            started_at=None,
            heartbeat_at=None,
            finished_at=None,
            duration_s=None,
            enqueued_at=utcnow(),
        )
    )
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict("an identical request is already queued or running") from exc
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"job {job.id} changed meanwhile; reload it")
    session.refresh(job)
    enqueue(queue, job)
    return job

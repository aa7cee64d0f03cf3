"""Creating traces and following their jobs (polling or server-sent events)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from functools import partial

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from persistence.tables import JobStatus
from server.deps import AppServices, CurrentUser, ServicesDep, SessionDep, resolve_user
from server.errors import problems
from server.limits import limit_jobs
from server.routes.params import JobId, Limit, Offset
from server.schemas import JobPublic, TraceCreate
from server.services import jobs
from server.strict_json import StrictJSONRoute

router = APIRouter(prefix="/api", tags=["traces"], route_class=StrictJSONRoute)

SSE_POLL_S = 0.5
SSE_KEEPALIVE_S = 15.0


@router.post("/traces", status_code=202, responses=problems(401, 403, 409, 429))
def create_trace(
    body: TraceCreate, request: Request, user: CurrentUser, session: SessionDep, services: ServicesDep
) -> JobPublic:
    """Queue a trace; answers at once with the job to follow. An identical request by the same
    user that is queued, running or done returns that job (`deduplicated: true`) and does not
    count against the rate limit."""
    submitted = jobs.submit_trace(
        session,
        services.queue,
        services.preview,
        user,
        body,
        max_feature_nodes_limit=services.settings.max_feature_nodes_limit,
        charge=partial(limit_jobs, services, request, user),
    )
    return JobPublic.of(submitted.job, deduplicated=submitted.deduplicated)


@router.get("/jobs", responses=problems(401))
def list_jobs(
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
    status: JobStatus | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[JobPublic]:
    """Your jobs, newest first."""
    limit = min(limit, services.settings.max_page_size)
    return [JobPublic.of(j) for j in jobs.list_jobs(session, user, status=status, limit=limit, offset=offset)]


@router.get("/jobs/{job_id}", responses=problems(401, 404))
def get_job(job_id: JobId, user: CurrentUser, session: SessionDep) -> JobPublic:
    """A job's status and progress; when done, `graph_slug` names its graph."""
    return JobPublic.of(jobs.get_job(session, job_id, user))


@router.post("/jobs/{job_id}/cancel", responses=problems(401, 403, 404, 409))
def cancel_job(job_id: JobId, user: CurrentUser, session: SessionDep, services: ServicesDep) -> JobPublic:
    return JobPublic.of(jobs.cancel_job(session, services.queue, job_id, user))


@router.post("/jobs/{job_id}/retry", status_code=202, responses=problems(401, 403, 404, 409))
def retry_job(job_id: JobId, user: CurrentUser, session: SessionDep, services: ServicesDep) -> JobPublic:
    """Queue a failed or cancelled job again."""
    return JobPublic.of(jobs.retry_job(session, services.queue, job_id, user))


@router.get(
    "/jobs/{job_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **problems(401, 404)},
)
async def job_events(job_id: JobId, request: Request, services: ServicesDep) -> StreamingResponse:
    """Server-sent events: a `job` event with the job (as GET /api/jobs/{id}) at every change,
    until the job is done, failed or cancelled."""
    first = await run_in_threadpool(_snapshot, services, request, job_id)
    return StreamingResponse(
        _events(services, request, job_id, first),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _snapshot(services: AppServices, request: Request, job_id: str) -> str:
    """The job as JSON text, read in a short session (no connection is held while streaming)."""
    with services.sessions() as session:
        user = resolve_user(request, session, services)
        return JobPublic.of(jobs.get_job(session, job_id, user)).model_dump_json()


async def _events(services: AppServices, request: Request, job_id: str, first: str) -> AsyncIterator[str]:
    data, last_sent, last_data = first, time.monotonic(), None
    while True:
        if data != last_data:
            yield f"event: job\ndata: {data}\n\n"
            last_data, last_sent = data, time.monotonic()
            if json.loads(data)["status"] not in (JobStatus.QUEUED, JobStatus.RUNNING):
                return
        elif time.monotonic() - last_sent > SSE_KEEPALIVE_S:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
        await asyncio.sleep(SSE_POLL_S)
        if await request.is_disconnected():
            return
        data = await run_in_threadpool(_snapshot, services, request, job_id)

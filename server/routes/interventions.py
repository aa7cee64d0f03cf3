"""Interventions on a graph's prompt: queue a job that compares the model before and after."""

from __future__ import annotations

from fastapi import APIRouter, Request

from server.deps import CurrentUser, ServicesDep, SessionDep, client_address
from server.ratelimit import enforce
from server.routes.params import SlugPath
from server.schemas import InterventionCreate, JobPublic
from server.services import graphs, interventions

router = APIRouter(prefix="/api/graphs", tags=["interventions"])


@router.post("/{slug}/interventions", status_code=202)
def create_interventions(
    slug: SlugPath,
    body: InterventionCreate,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
) -> JobPublic:
    """Set, ablate or scale features of the graph's prompt; answers with the job to follow.
    When done, the job's `result` holds the top next tokens before and after (k=10) and both
    greedy continuations."""
    s = services.settings
    enforce(
        services.limiter,
        f"trace:user:{user.id}",
        limit=s.trace_rate_limit_per_user,
        window_s=s.trace_rate_limit_window_s,
        what="jobs for this account",
    )
    enforce(
        services.limiter,
        f"trace:addr:{client_address(request)}",
        limit=s.trace_rate_limit_per_address,
        window_s=s.trace_rate_limit_window_s,
        what="jobs from this address",
    )
    record = graphs.get_graph(session, slug, user)
    submitted = interventions.submit(session, services.queue, user, record, body)
    return JobPublic.of(submitted.job, deduplicated=submitted.deduplicated)

"""Interventions on a graph's prompt: queue a job that compares the model before and after."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request

from server.deps import CurrentUser, ServicesDep, SessionDep
from server.errors import problems
from server.limits import limit_jobs
from server.routes.params import SlugPath
from server.schemas import InterventionCreate, JobPublic
from server.services import graphs, interventions
from server.strict_json import StrictJSONRoute

router = APIRouter(prefix="/api/graphs", tags=["interventions"], route_class=StrictJSONRoute)


@router.post("/{slug}/interventions", status_code=202, responses=problems(401, 403, 404, 409, 429))
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
    record = graphs.get_graph(session, slug, user)
    charge = partial(limit_jobs, services, request, user, what="jobs")
    submitted = interventions.submit(session, services.queue, user, record, body, charge=charge)
    return JobPublic.of(submitted.job, deduplicated=submitted.deduplicated)

"""LLM explanations of features: one feature now, or a graph's features as a job."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request

from persistence import features as feature_rows
from server.deps import CurrentUser, ServicesDep, SessionDep
from server.errors import problems
from server.limits import limit_explanations, limit_jobs
from server.routes.params import FeatureIndex, Layer, NamePath, SlugPath
from server.schemas import ExplanationPublic, JobPublic
from server.services import explanations, graphs
from server.strict_json import StrictJSONRoute

router = APIRouter(prefix="/api", tags=["explanations"], route_class=StrictJSONRoute)


@router.post(
    "/features/{model}/{transcoders}/{layer}/{index}/explain",
    responses=problems(401, 403, 404, 409, 422, 429, 503),
)
def explain_feature(
    model: NamePath,
    transcoders: NamePath,
    layer: Layer,
    index: FeatureIndex,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
) -> ExplanationPublic:
    """Ask the configured LLM (GLASSBOX_EXPLAINER_URL) to explain the feature from its dashboard,
    score the explanation on held-out contexts, and keep it as the feature's current explanation.
    Takes as long as the explainer needs (a few calls). 409 when explanations are off, 503 when
    the explainer fails, each saying what to fix; 422 for a feature without a dashboard."""
    addr = feature_rows.address(session, model, transcoders, layer, index)
    charge = partial(limit_explanations, services, user)
    return explanations.explain_one(session, services.settings, addr, user, charge=charge)


@router.post("/graphs/{slug}/explain", status_code=202, responses=problems(401, 403, 404, 409, 422, 429, 503))
def explain_graph_features(
    slug: SlugPath, request: Request, user: CurrentUser, session: SessionDep, services: ServicesDep
) -> JobPublic:
    """Queue a job that explains the graph's features that have a dashboard and no explanation
    yet, the most influential first (at most GLASSBOX_EXPLAINER_BATCH_LIMIT); follow it at
    /api/jobs/{id}. Its `result` counts the features explained, failed and left out."""
    record = graphs.get_graph(session, slug, user)
    charge = partial(limit_jobs, services, request, user, what="jobs")
    submitted = explanations.submit_graph_explanations(
        session, services.queue, services.settings, user, record, charge=charge
    )
    return JobPublic.of(submitted.job, deduplicated=submitted.deduplicated)

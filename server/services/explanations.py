"""LLM explanations from the API's side: explain one feature while the request waits, queue a
job that explains a graph's features, and show explanations with their provenance.

The work itself is worker/explain.py (shared with the job). A server without an explainer
answers 409 (explanations are off: which settings turn them on); what the explainer endpoint
gets wrong (down, slow, key refused, unusable answers) is a 503 that says what to fix; a
feature without a dashboard is a 422.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from glassbox.features.explain import ExplainerAuthError, ExplainerResponseError, ExplainerUnavailable
from persistence.errors import Conflict, Unavailable, Unprocessable
from persistence.explanations import latest_explanations
from persistence.features import FeatureAddress, find_feature
from persistence.settings import Settings
from persistence.tables import Feature, FeatureExplanation, GraphRecord, Job, User
from server.schemas import ExplanationPublic
from server.services.jobs import Submitted, submit_job
from worker.explain import NOT_CONFIGURED, explain_feature, explainer_client, new_explain_job
from worker.queue import JobQueue


def explanation_public(row: FeatureExplanation | None) -> ExplanationPublic | None:
    if row is None:
        return None
    return ExplanationPublic(
        text=row.text,
        score=row.score,
        n_scored=row.n_scored,
        explainer_model=row.explainer_model,
        prompt_version=row.prompt_version,
        created_at=row.created_at,
        requested_by=row.requested_by.username if row.requested_by else None,
    )


def explanation_of(session: Session, feature: Feature | None) -> ExplanationPublic | None:
    """The feature's newest explanation, if any."""
    if feature is None:
        return None
    return explanation_public(latest_explanations(session, [feature.id]).get(feature.id))


def explanations_of(session: Session, features: list[Feature]) -> dict[int, ExplanationPublic]:
    """Newest explanations of many features, by feature id."""
    rows = latest_explanations(session, [f.id for f in features])
    return {fid: pub for fid, row in rows.items() if (pub := explanation_public(row)) is not None}


def explainer_status(settings: Settings) -> dict[str, str | bool | None]:
    """What pages say about explanations: on or off, which model, how to turn them on."""
    return {
        "configured": bool(settings.explainer_url),
        "model": settings.explainer_model,
        "how_to": NOT_CONFIGURED,
    }


def explain_one(
    session: Session,
    settings: Settings,
    addr: FeatureAddress,
    user: User,
    *,
    charge: Callable[[], None] | None = None,
) -> ExplanationPublic:
    """Ask the configured explainer about one feature now, and keep the answer (`charge`, the
    rate limit, runs once the request is known to be answerable)."""
    client = explainer_client(settings)
    if client is None:
        raise Conflict(NOT_CONFIGURED)
    feature = find_feature(session, addr, with_dashboard=True)
    if feature is None or feature.dashboard_gz is None:
        raise Unprocessable(
            f"feature {addr.layer}/{addr.index} has no dashboard yet, so there is nothing to explain"
        )
    if charge is not None:
        charge()
    try:
        row = explain_feature(session, feature, client, requested_by_id=user.id)
    except (ExplainerUnavailable, ExplainerAuthError, ExplainerResponseError) as exc:
        raise Unavailable(f"the explainer could not explain this feature: {exc}") from exc
    session.refresh(row)
    return explanation_public(row)  # type: ignore[return-value]


def submit_graph_explanations(
    session: Session,
    queue: JobQueue,
    settings: Settings,
    user: User,
    record: GraphRecord,
    *,
    charge: Callable[[], None] | None = None,
) -> Submitted:
    """Queue a job that explains the graph's features without an explanation (or answer with
    this user's active one for the graph)."""
    if not settings.explainer_url:
        raise Conflict(NOT_CONFIGURED)
    if record.transcoder_set is None:
        raise Unprocessable(
            f"graph {record.slug!r} has no registered transcoder set, so its features have no dashboards"
        )
    job = new_explain_job(record, owner_id=user.id, limit=settings.explainer_batch_limit)
    return submit_job(
        session, queue, key=job.request_key, output=Job.graph_id, build=lambda: job, charge=charge
    )

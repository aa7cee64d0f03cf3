"""LLM explanations of stored features: one at a time (the API calls `explain_feature` while the
request waits), or every feature of a graph that has none yet, as a job of kind "explain".

The explainer is the OpenAI-compatible endpoint of GLASSBOX_EXPLAINER_URL (engine:
glassbox.features.explain). A feature is explained from its stored dashboard; the contexts of
other features of its transcoder set stand in for contexts where it is silent. The job is an
ordinary worker job (claim, heartbeat, cancel, retry: persistence.jobs), named in the
`glassbox.job_kinds` entry point group; its `result` counts what it did.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from glassbox.features.explain import (
    N_HOLDOUT,
    ChatClient,
    ExplainerAuthError,
    ExplainerError,
    ExplainerUnavailable,
    contexts_of_other_features,
    evidence_from_dashboard,
    explain,
)
from glassbox.graph import neuronpedia as nf
from persistence.db import SessionFactory
from persistence.errors import Unprocessable
from persistence.explanations import dashboard_of, latest_explanations, other_dashboards, store_explanation
from persistence.jobs import Claim, JobMonitor, JobStopped, fail_job, failure_reason, finish_job, start_queued
from persistence.settings import Settings
from persistence.tables import Feature, FeatureExplanation, GraphBlob, GraphRecord, Job, JobStatus
from worker.context import WorkerContext

log = logging.getLogger(__name__)

EXPLAIN_KIND = "explain"
WHAT = "explanation job"
NOT_CONFIGURED = (
    "LLM explanations are off: set GLASSBOX_EXPLAINER_URL to an OpenAI-compatible chat API "
    "(e.g. http://127.0.0.1:8080/v1), with GLASSBOX_EXPLAINER_MODEL and GLASSBOX_EXPLAINER_API_KEY "
    "if it needs them"
)
FEATURE_NODE = re.compile(r"^(\d+)_(\d+)_(\d+)$")
NOT_FEATURES = {nf.ERROR, nf.EMBEDDING, nf.LOGIT}
MAX_ERRORS_KEPT = 5


def explainer_client(settings: Settings) -> ChatClient | None:
    """The client of the configured endpoint; None when explanations are off."""
    if not settings.explainer_url:
        return None
    key = settings.explainer_api_key.get_secret_value() if settings.explainer_api_key else None
    return ChatClient(
        settings.explainer_url,
        model=settings.explainer_model or None,
        api_key=key or None,
        timeout_s=settings.explainer_timeout_s,
    )


def explain_feature(
    session: Session, feature: Feature, client: ChatClient, *, requested_by_id: int | None
) -> FeatureExplanation:
    """Explain one stored feature and keep the explanation. The session's transaction ends
    before the explainer is asked, so no database connection waits on it."""
    dashboard = dashboard_of(feature)
    if not dashboard:
        raise Unprocessable(
            f"feature {feature.layer}/{feature.index} has no dashboard yet, so there is nothing to explain"
        )
    evidence = evidence_from_dashboard(dashboard)
    others = other_dashboards(session, feature, 2 * N_HOLDOUT, seed=feature.id)
    negatives = contexts_of_other_features(others, exclude=evidence, seed=feature.id)
    feature_id = feature.id
    session.commit()
    result = explain(client, evidence, negatives, seed=feature_id)
    return store_explanation(session, feature_id, result, requested_by_id=requested_by_id)


# ---- which features a graph has ------------------------------------------------------------


def graph_features(doc: dict[str, Any]) -> list[tuple[int, int]]:
    """(layer, feature) of a graph JSON's feature nodes, each once, the most influential first
    (smallest cumulative influence, as circuit-tracer writes it; nodes without one last)."""
    best: dict[tuple[int, int], float] = {}
    for node in doc.get("nodes") or []:
        if not isinstance(node, dict) or node.get("feature_type") in NOT_FEATURES:
            continue
        match = FEATURE_NODE.match(str(node.get("node_id", "")))
        if match is None:
            continue
        ref = (int(match.group(1)), int(match.group(2)))
        influence = node.get("influence")
        rank = float(influence) if isinstance(influence, int | float) else float("inf")
        best[ref] = min(rank, best.get(ref, float("inf")))
    return sorted(best, key=lambda ref: (best[ref], ref))


def features_to_explain(
    session: Session, transcoder_set_id: int, refs: list[tuple[int, int]], *, limit: int
) -> tuple[list[int], dict[str, int]]:
    """Ids of the features among `refs` with a dashboard and no explanation (at most `limit`, in
    the order of `refs`), and counts of those left out."""
    rows: dict[tuple[int, int], tuple[int, bool]] = {}
    for start in range(0, len(refs), 500):
        part = refs[start : start + 500]
        layers = {layer for layer, _ in part}
        indices = {index for _, index in part}
        found = session.execute(
            select(Feature.id, Feature.layer, Feature.index, Feature.dashboard_gz.is_not(None)).where(
                Feature.transcoder_set_id == transcoder_set_id,
                Feature.layer.in_(layers),
                Feature.index.in_(indices),
            )
        ).all()
        wanted = set(part)
        rows.update({(r[1], r[2]): (r[0], bool(r[3])) for r in found if (r[1], r[2]) in wanted})
    explained = latest_explanations(session, [fid for fid, _ in rows.values()])
    todo, counts = [], {"already_explained": 0, "no_dashboard": 0, "over_limit": 0}
    for ref in refs:
        fid, has_dashboard = rows.get(ref, (None, False))
        if fid is None or not has_dashboard:
            counts["no_dashboard"] += 1
        elif fid in explained:
            counts["already_explained"] += 1
        elif len(todo) >= limit:
            counts["over_limit"] += 1
        else:
            todo.append(fid)
    return todo, counts


# ---- the job -------------------------------------------------------------------------------


def request_key(*, owner_id: int, graph_id: int) -> str:
    """One active explanation job per user and graph."""
    canonical = json.dumps({"kind": EXPLAIN_KIND, "o": owner_id, "g": graph_id}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def new_explain_job(record: GraphRecord, *, owner_id: int, limit: int) -> Job:
    """A queued first attempt for graph `record` (with a registered transcoder set), not stored."""
    return Job(
        id=uuid.uuid4().hex,
        kind=EXPLAIN_KIND,
        status=JobStatus.QUEUED,
        request_key=request_key(owner_id=owner_id, graph_id=record.id),
        request={
            "prompt": f"Explain the features of graph {record.slug}",
            "model": record.model.name if record.model else None,
            "transcoders": record.transcoder_set.name if record.transcoder_set else None,
            "graph_slug": record.slug,
            "graph_id": record.id,
            "limit": limit,
        },
        model_id=record.model_id,
        transcoder_set_id=record.transcoder_set_id,
        owner_id=owner_id,
        attempt=1,
    )


def run_explain_job(context: WorkerContext, job_id: str) -> str:
    """The job function of kind "explain"; a no-op if the job is not queued."""
    sessions = context.sessions
    with sessions() as session:
        if not start_queued(session, job_id, worker_name=context.name, kind=EXPLAIN_KIND):
            return "skipped"
        job = session.get(Job, job_id)
        if job is None:
            return "skipped"
        claim = Claim.of(job, context.name)
        request = dict(job.request)
    client = explainer_client(context.settings)
    if client is None:
        fail_job(sessions, claim, f"this worker cannot explain: {NOT_CONFIGURED}")
        return "failed"
    monitor = JobMonitor(
        sessions,
        claim,
        heartbeat_interval_s=context.settings.job_heartbeat_interval_s,
        timeout_s=context.settings.job_timeout_s,
        what=WHAT,
    )
    log.info("explanation job %s started: graph %s", job_id, request.get("graph_slug"))
    with monitor:
        try:
            result = explain_graph(sessions, claim, request, client, monitor.progress)
        except JobStopped:
            log.info("explanation job %s was cancelled or taken over", job_id)
            return "stopped"
        except Exception as exc:
            reason = failure_reason(exc, what=WHAT, timeout_s=context.settings.job_timeout_s)
            fail_job(sessions, claim, reason)
            return "failed"
    return "done" if finish_job(sessions, claim, result=result, duration_s=None) else "stopped"


def explain_graph(
    sessions: SessionFactory, claim: Claim, request: dict[str, Any], client: ChatClient, progress: Any
) -> dict[str, Any]:
    """Explain the graph's features that have none, most influential first; what the job's
    result says. An endpoint that is down or refuses the key stops the job (the explanations
    made so far are kept); an unusable answer for one feature only skips that feature."""
    progress("reading the graph", 0.0)
    with sessions() as session:
        record = session.get(GraphRecord, int(request["graph_id"]))
        data = session.scalar(select(GraphBlob.data_gz).where(GraphBlob.graph_id == int(request["graph_id"])))
        if record is None or data is None or record.transcoder_set_id is None:
            raise ExplainerError(f"graph {request.get('graph_slug')!r} is gone or has no transcoder set")
        refs = graph_features(json.loads(gzip.decompress(data)))
        todo, counts = features_to_explain(
            session, record.transcoder_set_id, refs, limit=int(request.get("limit") or 100)
        )
    explained, failed, errors = 0, 0, []
    for i, feature_id in enumerate(todo):
        progress(f"explaining feature {i + 1} of {len(todo)}", i / max(1, len(todo)))
        with sessions() as session:
            feature = session.scalar(
                select(Feature).where(Feature.id == feature_id).options(undefer(Feature.dashboard_gz))
            )
            if feature is None or feature.id in latest_explanations(session, [feature_id]):
                continue  # deleted, or explained meanwhile (by a person on its page)
            try:
                explain_feature(session, feature, client, requested_by_id=claim.owner_id)
                explained += 1
            except (ExplainerAuthError, ExplainerUnavailable) as exc:
                raise ExplainerError(f"{exc} (stopped after {explained} of {len(todo)} features)") from exc
            except (ExplainerError, Unprocessable) as exc:  # one unusable answer: skip the feature
                failed += 1
                if len(errors) < MAX_ERRORS_KEPT:
                    errors.append(f"{feature.layer}/{feature.index}: {getattr(exc, 'message', exc)}")
    return {
        "graph_slug": request.get("graph_slug"),
        "features": len(refs),
        "explained": explained,
        "failed": failed,
        **counts,
        "errors": errors,
    }

"""LLM explanations of features: rows with their score and provenance, and what explaining a
stored feature reads (its dashboard, and other features' dashboards as non-activating contexts).

Every explanation is kept; the newest of a feature is the one shown. Human labels live apart
(feature_labels, with their history) and take precedence wherever a label is shown.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from glassbox.features.explain import Explanation
from persistence.tables import Feature, FeatureExplanation


def dashboard_of(feature: Feature) -> dict[str, Any] | None:
    """The feature's stored dashboard (load it with find_feature(..., with_dashboard=True))."""
    if feature.dashboard_gz is None:
        return None
    return json.loads(gzip.decompress(feature.dashboard_gz), parse_constant=lambda _: None)


def store_explanation(
    session: Session, feature_id: int, result: Explanation, *, requested_by_id: int | None
) -> FeatureExplanation:
    """Add an explanation (committed); it becomes the feature's current one."""
    row = FeatureExplanation(
        feature_id=feature_id,
        text=result.text,
        score=result.score,
        n_scored=result.n_scored,
        explainer_model=result.explainer_model[:200],
        prompt_version=result.prompt_version[:64],
        requested_by_id=requested_by_id,
        created_at=result.created_at,
    )
    session.add(row)
    session.commit()
    return row


def latest_explanations(session: Session, feature_ids: Iterable[int]) -> dict[int, FeatureExplanation]:
    """The newest explanation of each feature that has one, by feature id."""
    ids = sorted(set(feature_ids))
    found: dict[int, FeatureExplanation] = {}
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        newest = (
            select(func.max(FeatureExplanation.id))
            .where(FeatureExplanation.feature_id.in_(part))
            .group_by(FeatureExplanation.feature_id)
        )
        for row in session.scalars(select(FeatureExplanation).where(FeatureExplanation.id.in_(newest))):
            found[row.feature_id] = row
    return found


def other_dashboards(session: Session, feature: Feature, n: int, *, seed: int) -> list[dict[str, Any]]:
    """Dashboards of up to `n` other features of the same transcoder set, picked at random
    (reproducibly for a seed): their contexts stand in for contexts where `feature` is silent."""
    ids = session.scalars(
        select(Feature.id).where(
            Feature.transcoder_set_id == feature.transcoder_set_id,
            Feature.id != feature.id,
            Feature.dashboard_gz.is_not(None),
        )
    ).all()
    chosen = random.Random(seed).sample(sorted(ids), min(n, len(ids)))
    if not chosen:
        return []
    rows = session.scalars(
        select(Feature.dashboard_gz).where(Feature.id.in_(chosen)).order_by(Feature.id)
    ).all()
    return [d for d in (json.loads(gzip.decompress(raw), parse_constant=lambda _: None) for raw in rows) if d]

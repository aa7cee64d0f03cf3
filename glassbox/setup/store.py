"""What the setup writes to the server's database, through the server's own services.

Every function is idempotent: registering what is registered, storing a dashboard that is
stored, or a featured graph whose slug exists, finds it and moves on.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from glassbox.featured import FEATURED, FeaturedPrompt
from glassbox.setup.pipeline import SetupError
from server.errors import Conflict
from server.services import features as feature_service
from server.services import registry
from server.services.graphs import GraphOrigin, store_graph
from server.tables import (
    Feature,
    GraphRecord,
    GraphSource,
    ModelEntry,
    TranscoderSetEntry,
    Visibility,
)

# ---- registry --------------------------------------------------------------------------------


def find_model(session: Session, name: str) -> ModelEntry | None:
    return session.scalar(select(ModelEntry).where(ModelEntry.name == name))


def ensure_model(session: Session, *, name: str, source: str, display_name: str) -> ModelEntry:
    """The registry entry of the setup's model, added when missing."""
    model = find_model(session, name)
    if model is not None:
        if model.source != source:
            raise SetupError(
                f"a model named {name!r} is registered with source {model.source!r}, not {source!r}"
            )
        return model
    try:
        return registry.add_model(session, name=name, source=source, display_name=display_name)
    except Conflict:  # registered meanwhile by another process
        session.rollback()
        found = find_model(session, name)
        if found is None:
            raise
        return found


def find_transcoder_set(session: Session, model_name: str, set_name: str) -> TranscoderSetEntry | None:
    return session.scalar(
        select(TranscoderSetEntry)
        .join(ModelEntry, TranscoderSetEntry.model_id == ModelEntry.id)
        .where(ModelEntry.name == model_name, TranscoderSetEntry.name == set_name)
    )


def ensure_transcoder_set(
    session: Session, model: ModelEntry, *, name: str, source: str, n_layers: int, description: str
) -> TranscoderSetEntry:
    """The setup's transcoder set, registered as the model's default when missing."""
    tset = find_transcoder_set(session, model.name, name)
    if tset is not None:
        if tset.source != source:
            raise SetupError(
                f"model {model.name!r} already has a transcoder set {name!r} from {tset.source!r}; "
                f"the setup would register {source!r} under the same name"
            )
        return tset
    return registry.add_transcoder_set(
        session, model, name=name, source=source, description=description, n_layers=n_layers, is_default=True
    )


# ---- dashboards ------------------------------------------------------------------------------


def stored_dashboards(session: Session, tset_id: int) -> set[tuple[int, int]]:
    """(layer, index) of the features of a set that already have a dashboard."""
    rows = session.execute(
        select(Feature.layer, Feature.index).where(
            Feature.transcoder_set_id == tset_id, Feature.dashboard_gz.is_not(None)
        )
    )
    return {(int(layer), int(index)) for layer, index in rows}


def count_dashboards(session: Session, tset_id: int) -> int:
    return (
        session.scalar(
            select(func.count()).where(
                Feature.transcoder_set_id == tset_id, Feature.dashboard_gz.is_not(None)
            )
        )
        or 0
    )


def store_dashboards(session: Session, tset: TranscoderSetEntry, dashboards: Iterable[dict[str, Any]]) -> int:
    """Save dashboards (dicts of glassbox.features) with the feature service; returns how many."""
    n = 0
    for dash in dashboards:
        addr = feature_service.FeatureAddress(tset, int(dash["layer"]), int(dash["feature"]))
        feature_service.store_dashboard(session, addr, dashboard=dash, auto_label=dash.get("auto_label"))
        n += 1
    return n


# ---- featured graphs -------------------------------------------------------------------------


def present_slugs(session: Session, slugs: Iterable[str]) -> set[str]:
    wanted = list(slugs)
    return (
        set(session.scalars(select(GraphRecord.slug).where(GraphRecord.slug.in_(wanted))))
        if wanted
        else set()
    )


def store_featured_graph(
    session: Session,
    item: FeaturedPrompt,
    doc: dict[str, Any],
    *,
    model: ModelEntry,
    tset: TranscoderSetEntry,
    scores: tuple[float | None, float | None],
    max_feature_nodes: int,
) -> GraphRecord:
    """Store one featured graph: public, owned by nobody, slug `featured-<key>`."""
    origin = GraphOrigin(
        source=GraphSource.TRACE,
        owner_id=None,
        visibility=Visibility.PUBLIC,
        model_id=model.id,
        transcoder_set_id=tset.id,
        parameters={
            "max_feature_nodes": max_feature_nodes,
            "featured": {"key": item.key, "title": item.title},
        },
        replacement_score=scores[0],
        completeness_score=scores[1],
    )
    record = store_graph(session, doc, slug=item.slug, origin=origin)
    session.commit()
    return record


def list_featured(session: Session, prompts: tuple[FeaturedPrompt, ...] = FEATURED) -> list[GraphRecord]:
    """The public featured graphs that exist, in the order of `prompts`."""
    order = {item.slug: i for i, item in enumerate(prompts)}
    stmt = select(GraphRecord).where(
        GraphRecord.slug.in_(list(order)), GraphRecord.visibility == Visibility.PUBLIC
    )
    records = session.scalars(stmt).unique()
    return sorted(records, key=lambda r: order[r.slug])

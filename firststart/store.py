"""What the setup writes to the database, through the same persistence functions as the server.

Every function is idempotent: registering what is registered, storing a dashboard that is
stored, or a featured graph the setup stored already, finds it and moves on. A featured slug
counts only when it holds the setup's own graph (a trace, owned by nobody).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from firststart.featured import FEATURED, FeaturedPrompt
from firststart.pipeline import SetupError
from persistence import features as feature_rows
from persistence import registry
from persistence.errors import Conflict
from persistence.graphs import GraphOrigin, free_slug, new_slug, rename_graph, store_graph
from persistence.tables import (
    Feature,
    GraphRecord,
    GraphSource,
    ModelEntry,
    TranscoderSetEntry,
    Visibility,
)

log = logging.getLogger(__name__)

# ---- registry --------------------------------------------------------------------------------


def ensure_model(session: Session, *, name: str, source: str, display_name: str) -> ModelEntry:
    """The registry entry of the setup's model, added when missing."""
    model = registry.find_model(session, name)
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
        found = registry.find_model(session, name)
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
        addr = feature_rows.FeatureAddress(tset, int(dash["layer"]), int(dash["feature"]))
        feature_rows.store_dashboard(session, addr, dashboard=dash, auto_label=dash.get("auto_label"))
        n += 1
    return n


# ---- featured graphs -------------------------------------------------------------------------


def _own_featured() -> ColumnElement[bool]:
    """A graph the setup stored itself: made by a trace, owned by nobody. (Slugs `featured-*`
    are reserved for it, but a graph uploaded before they were may hold one.)"""
    return and_(GraphRecord.owner_id.is_(None), GraphRecord.source == GraphSource.TRACE)


def present_slugs(session: Session, slugs: Iterable[str]) -> set[str]:
    """The featured slugs among `slugs` that hold the setup's own graph."""
    wanted = list(slugs)
    if not wanted:
        return set()
    stmt = select(GraphRecord.slug).where(GraphRecord.slug.in_(wanted), _own_featured())
    return set(session.scalars(stmt))


def _move_aside(session: Session, slug: str) -> None:
    """A graph that is not the setup's own but holds `slug` gets a free slug of its own (its
    owner keeps it), so the featured graph can take the slug."""
    held = session.scalar(select(GraphRecord).where(GraphRecord.slug == slug))
    if held is None:
        return
    moved_to = free_slug(session, new_slug("moved", slug))
    log.warning("graph %s (owner id %s) held a featured slug; it is now %s", slug, held.owner_id, moved_to)
    rename_graph(session, held, moved_to)
    session.flush()


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
    """Store one featured graph: public, owned by nobody, slug `featured-<key>` (a graph
    that is not the setup's own but holds the slug moves aside)."""
    _move_aside(session, item.slug)
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
    """The setup's public featured graphs that exist, in the order of `prompts`."""
    order = {item.slug: i for i, item in enumerate(prompts)}
    stmt = select(GraphRecord).where(
        GraphRecord.slug.in_(list(order)), GraphRecord.visibility == Visibility.PUBLIC, _own_featured()
    )
    records = session.scalars(stmt).unique()
    return sorted(records, key=lambda r: order[r.slug])

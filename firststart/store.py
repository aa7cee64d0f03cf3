"""What the setup writes to the database, through the same persistence functions as the server.

Every function is idempotent: registering what is registered, storing a dashboard that is
stored, or a featured graph the setup stored already, finds it and moves on. A featured slug
counts only when it holds the setup's own graph (a trace, owned by nobody).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select, tuple_
from sqlalchemy.orm import Session

from firststart.featured import FEATURED, FeaturedPrompt, refresh_guide
from firststart.pipeline import SetupError
from glassbox.graph.neuronpedia import FEATURE, cantor_unpair
from persistence import features as feature_rows
from persistence import registry
from persistence.errors import Conflict
from persistence.graphs import (
    GraphOrigin,
    compress,
    decompress,
    free_slug,
    new_slug,
    rename_graph,
    store_graph,
)
from persistence.tables import (
    Feature,
    GraphBlob,
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
            "featured": {"key": item.key, "title": item.title, "expected": item.expected,
                         "top_predictions": _top_predictions(doc)},
        },
        replacement_score=scores[0],
        completeness_score=scores[1],
    )
    record = store_graph(session, doc, slug=item.slug, origin=origin)
    session.commit()
    return record


def _top_predictions(doc: dict[str, Any]) -> list[Any]:
    """The model's top next tokens the graph JSON carries (firststart.featured.featured_doc), for
    pages that list featured graphs without reading their JSON."""
    section = (doc.get("metadata") or {}).get("glassbox") or {}
    top = section.get("top_predictions") if isinstance(section, dict) else None
    return list(top) if isinstance(top, list) else []


def list_featured(session: Session, prompts: tuple[FeaturedPrompt, ...] = FEATURED) -> list[GraphRecord]:
    """The setup's public featured graphs that exist, in the order of `prompts`."""
    order = {item.slug: i for i, item in enumerate(prompts)}
    stmt = select(GraphRecord).where(
        GraphRecord.slug.in_(list(order)), GraphRecord.visibility == Visibility.PUBLIC, _own_featured()
    )
    records = session.scalars(stmt).unique()
    return sorted(records, key=lambda r: order[r.slug])


# ---- labels in featured graphs -----------------------------------------------------------------


def unlabelled_featured(session: Session, slugs: Iterable[str]) -> list[GraphRecord]:
    """The setup's own featured graphs among `slugs` whose JSON does not carry the dashboards'
    auto labels yet: traced before the dashboards were built (or by an older setup)."""
    wanted = list(slugs)
    if not wanted:
        return []
    stmt = select(GraphRecord).where(GraphRecord.slug.in_(wanted), _own_featured())
    return [r for r in session.scalars(stmt).unique() if not _labelled(r)]


def _labelled(record: GraphRecord) -> bool:
    featured = (record.parameters or {}).get("featured")
    return isinstance(featured, dict) and featured.get("labelled") is True


def auto_labels(
    session: Session, tset_id: int, keys: Iterable[tuple[int, int]]
) -> dict[tuple[int, int], str]:
    """{(layer, index): auto label} of the features among `keys` that have one."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    stmt = select(Feature.layer, Feature.index, Feature.auto_label).where(
        Feature.transcoder_set_id == tset_id,
        tuple_(Feature.layer, Feature.index).in_(wanted),
        Feature.auto_label.is_not(None),
    )
    return {(int(layer), int(index)): label for layer, index, label in session.execute(stmt) if label}


def label_featured_graph(session: Session, record: GraphRecord) -> int:
    """Write the stored auto labels of its features into a featured graph's JSON (the nodes'
    `clerp`, what a downloaded graph carries) and mark it labelled; returns how many nodes got
    one. The viewer reads labels from the database itself, so this only keeps the JSON in step."""
    blob = session.get(GraphBlob, record.id)
    labelled = 0
    if blob is not None and record.transcoder_set_id is not None:
        doc = json.loads(decompress(blob.data_gz))
        nodes = [(node, _feature_key(node)) for node in doc.get("nodes", [])]
        labels = auto_labels(session, record.transcoder_set_id, (key for _, key in nodes if key))
        for node, key in nodes:
            if key in labels:
                node["clerp"] = labels[key]
                labelled += 1
        if labelled:
            refresh_guide(doc)  # its note and supernodes name features by these labels
        blob.data_gz, record.size_bytes = compress(doc)
    featured = dict((record.parameters or {}).get("featured") or {})
    record.parameters = {**(record.parameters or {}), "featured": {**featured, "labelled": True}}
    session.commit()
    return labelled


def _feature_key(node: Any) -> tuple[int, int] | None:
    """(layer, index) of a transcoder feature node of graph JSON; None for other nodes."""
    if not isinstance(node, dict) or node.get("feature_type") != FEATURE:
        return None
    feature = node.get("feature")
    return cantor_unpair(feature) if isinstance(feature, int) and feature >= 0 else None

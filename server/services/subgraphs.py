"""Saved subgraphs: a graph plus viewer state, shared by their own slug; and the suggested
subgraph of a graph (glassbox.graph.guide), computed from its stored JSON."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from glassbox.graph.guide import suggest_subgraph
from persistence.errors import NotFound, Unprocessable
from persistence.graphs import decompress, new_slug
from persistence.tables import Feature, GraphRecord, Subgraph, User, utcnow
from server.services.common import check_can_edit, check_visible
from server.services.graphs import get_graph, get_graph_data

NOT_NULL = ("title", "pinned_ids", "supernodes", "label_overrides", "visibility")


def create_subgraph(session: Session, graph: GraphRecord, user: User, fields: dict[str, Any]) -> Subgraph:
    subgraph = Subgraph(slug=_free_slug(session, graph.slug), graph_id=graph.id, owner_id=user.id, **fields)
    session.add(subgraph)
    session.commit()
    session.refresh(subgraph)
    return subgraph


def _free_slug(session: Session, graph_slug: str) -> str:
    while True:
        slug = new_slug(graph_slug[:60], "view")
        if session.scalar(select(Subgraph.id).where(Subgraph.slug == slug)) is None:
            return slug


def get_subgraph(session: Session, slug: str, user: User | None) -> Subgraph:
    subgraph = session.scalar(select(Subgraph).where(Subgraph.slug == slug))
    if subgraph is None:
        raise NotFound(f"subgraph {slug!r} not found")
    check_visible(subgraph.visibility, subgraph.owner_id, user, f"subgraph {slug!r}")
    graph = subgraph.graph
    check_visible(graph.visibility, graph.owner_id, user, f"subgraph {slug!r}")
    return subgraph


def list_subgraphs(session: Session, graph: GraphRecord, user: User | None) -> list[Subgraph]:
    rows = session.scalars(
        select(Subgraph).where(Subgraph.graph_id == graph.id).order_by(Subgraph.created_at)
    )
    visible = []
    for row in rows:
        try:
            check_visible(row.visibility, row.owner_id, user, "subgraph")
        except NotFound:
            continue
        visible.append(row)
    return visible


def update_subgraph(session: Session, slug: str, user: User, changes: dict[str, Any]) -> Subgraph:
    cleared = [k for k in NOT_NULL if k in changes and changes[k] is None]
    if cleared:
        raise Unprocessable(f"{', '.join(cleared)} cannot be null")
    subgraph = get_subgraph(session, slug, user)
    check_can_edit(subgraph.owner_id, user, "subgraph")
    for key, value in changes.items():
        setattr(subgraph, key, value)
    subgraph.updated_at = utcnow()
    session.commit()
    return subgraph


def delete_subgraph(session: Session, slug: str, user: User) -> None:
    subgraph = get_subgraph(session, slug, user)
    check_can_edit(subgraph.owner_id, user, "subgraph")
    session.delete(subgraph)
    session.commit()


def suggested_subgraph(session: Session, slug: str, user: User | None) -> dict[str, Any]:
    """The suggested subgraph and note of a graph the user may see (glassbox.graph.guide), with
    feature labels as the viewer shows them: the label, else the auto label, else the JSON's."""
    record = get_graph(session, slug, user)
    doc = json.loads(decompress(get_graph_data(session, record)))
    if record.transcoder_set_id is not None:
        _use_stored_labels(session, record.transcoder_set_id, doc)
    return suggest_subgraph(doc).to_json()


def _use_stored_labels(session: Session, tset_id: int, doc: dict[str, Any]) -> None:
    """Put the features table's labels into the feature nodes' clerps."""
    nodes = {}
    for node in doc.get("nodes") or []:
        parts = str(node.get("node_id", "")).split("_")
        if node.get("feature_type") == "cross layer transcoder" and len(parts) == 3:
            try:
                nodes.setdefault((int(parts[0]), int(parts[1])), []).append(node)
            except ValueError:
                continue
    if not nodes:
        return
    rows = session.execute(
        select(Feature.layer, Feature.index, Feature.label, Feature.auto_label).where(
            Feature.transcoder_set_id == tset_id,
            Feature.layer.in_({layer for layer, _ in nodes}),
            Feature.index.in_({index for _, index in nodes}),
        )
    )
    for layer, index, label, auto_label in rows:
        text = label or auto_label
        for node in nodes.get((layer, index), []) if text else []:
            node["clerp"] = text

"""Graphs: storing (from a worker or an upload), fetching, listing and searching."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from server import graph_json
from server.errors import Conflict, NotFound
from server.services.common import check_can_edit, check_visible, new_slug
from server.tables import GraphBlob, GraphRecord, GraphSource, ModelEntry, User, Visibility


@dataclass(frozen=True)
class GraphOrigin:
    """Who made a graph and how; everything `store_graph` records beside the JSON."""

    source: GraphSource
    owner_id: int | None
    visibility: Visibility
    model_id: int | None = None
    transcoder_set_id: int | None = None
    parameters: dict[str, Any] | None = None
    replacement_score: float | None = None
    completeness_score: float | None = None


def slug_taken(session: Session, slug: str) -> bool:
    return session.scalar(select(GraphRecord.id).where(GraphRecord.slug == slug)) is not None


def free_slug(session: Session, wanted: str) -> str:
    """`wanted` if free, else `wanted` with a random tail (a slug is never reused)."""
    slug = wanted
    while slug_taken(session, slug):
        slug = new_slug(wanted[:80])
    return slug


def store_graph(
    session: Session,
    doc: dict[str, Any],
    *,
    slug: str,
    origin: GraphOrigin,
    summary: graph_json.GraphSummary | None = None,
) -> GraphRecord:
    """Add a graph and its compressed JSON to the session (the caller commits)."""
    summary = summary or graph_json.validate_graph(doc)
    doc["metadata"]["slug"] = slug
    data_gz, size = graph_json.compress(doc)
    record = GraphRecord(
        slug=slug,
        prompt=summary.prompt,
        tokens=summary.tokens,
        parameters=origin.parameters or {},
        scan=summary.scan,
        model_id=origin.model_id,
        transcoder_set_id=origin.transcoder_set_id,
        owner_id=origin.owner_id,
        visibility=origin.visibility,
        source=origin.source,
        node_count=summary.node_count,
        link_count=summary.link_count,
        size_bytes=size,
        replacement_score=origin.replacement_score,
        completeness_score=origin.completeness_score,
    )
    session.add(record)
    session.flush()
    session.add(GraphBlob(graph_id=record.id, data_gz=data_gz))
    return record


def import_graph(
    session: Session,
    raw: bytes,
    *,
    user: User,
    slug: str | None,
    visibility: Visibility,
    max_graph_bytes: int,
) -> GraphRecord:
    """A graph JSON made by circuit-tracer, Neuronpedia or Glassbox, uploaded by `user`."""
    doc = graph_json.decode_upload(raw, max_bytes=max_graph_bytes)
    summary = graph_json.validate_graph(doc)
    if slug is not None and slug_taken(session, slug):
        raise Conflict(f"the slug {slug!r} is taken")
    model_id = session.scalar(select(ModelEntry.id).where(ModelEntry.name == summary.scan))
    slug = slug or free_slug(session, new_slug(summary.scan, summary.prompt[:40]))
    origin = GraphOrigin(
        source=GraphSource.IMPORT,
        owner_id=user.id,
        visibility=visibility,
        model_id=model_id,
        parameters=_imported_parameters(doc),
    )
    record = store_graph(session, doc, slug=slug, origin=origin, summary=summary)
    session.commit()
    return record


def _imported_parameters(doc: dict[str, Any]) -> dict[str, Any]:
    metadata = doc["metadata"]
    keep = ("node_threshold", "generation_settings", "pruning_settings", "info")
    return {k: metadata[k] for k in keep if k in metadata}


def get_graph(session: Session, slug: str, user: User | None) -> GraphRecord:
    record = session.scalar(select(GraphRecord).where(GraphRecord.slug == slug))
    if record is None:
        raise NotFound(f"graph {slug!r} not found")
    check_visible(record.visibility, record.owner_id, user, f"graph {slug!r}")
    return record


def get_graph_data(session: Session, record: GraphRecord) -> bytes:
    """The stored gzip bytes of a graph's JSON."""
    data = session.scalar(select(GraphBlob.data_gz).where(GraphBlob.graph_id == record.id))
    if data is None:
        raise NotFound(f"graph {record.slug!r} has no data")
    return data


def list_graphs(
    session: Session,
    *,
    user: User | None,
    query: str | None = None,
    model: str | None = None,
    owner: str | None = None,
    mine: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[GraphRecord], int]:
    """Public graphs (and the user's own), newest first, filtered; returns (page, total)."""
    stmt = _visible_to(select(GraphRecord), user, mine=mine)
    if query:
        stmt = stmt.where(func.lower(GraphRecord.prompt).contains(query.lower(), autoescape=True))
    if model:
        stmt = stmt.join(ModelEntry, GraphRecord.model_id == ModelEntry.id).where(
            or_(ModelEntry.name == model, GraphRecord.scan == model)
        )
    if owner:
        stmt = stmt.join(User, GraphRecord.owner_id == User.id).where(User.username == owner.lower())
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    page = stmt.order_by(GraphRecord.created_at.desc(), GraphRecord.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(page).unique()), total


def _visible_to(stmt: Select[Any], user: User | None, *, mine: bool) -> Select[Any]:
    if mine:
        return stmt.where(GraphRecord.owner_id == (user.id if user else -1))
    if user is None:
        return stmt.where(GraphRecord.visibility == Visibility.PUBLIC)
    return stmt.where(or_(GraphRecord.visibility == Visibility.PUBLIC, GraphRecord.owner_id == user.id))


def update_graph(session: Session, slug: str, user: User, *, visibility: Visibility) -> GraphRecord:
    record = get_graph(session, slug, user)
    check_can_edit(record.owner_id, user, "graph")
    record.visibility = visibility
    session.commit()
    return record


def delete_graph(session: Session, slug: str, user: User) -> None:
    record = get_graph(session, slug, user)
    check_can_edit(record.owner_id, user, "graph")
    session.delete(record)
    session.commit()

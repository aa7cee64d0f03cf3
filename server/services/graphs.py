"""Graphs: uploads, fetching, listing, searching and editing (storage: persistence.graphs)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from persistence.errors import Conflict, NotFound
from persistence.graphs import (
    KEPT_METADATA,
    GraphOrigin,
    check_graph,
    check_upload_fields,
    check_user_slug,
    decode_upload,
    free_slug,
    new_slug,
    set_graph_title,
    slug_taken,
    store_graph,
)
from persistence.tables import GraphBlob, GraphRecord, GraphSource, ModelEntry, User, Visibility
from server.services.common import check_can_edit, check_visible


def import_graph(
    session: Session,
    raw: bytes,
    *,
    user: User,
    slug: str | None,
    visibility: Visibility,
    max_graph_bytes: int,
) -> GraphRecord:
    """A graph JSON made by circuit-tracer, Neuronpedia or Glassbox, uploaded by `user`: at most
    `max_graph_bytes` once decompressed, each field within UPLOAD_LIMITS, all text valid Unicode
    (store_graph checks that).

    A slug held by any graph, visible to `user` or not, gets the same 409.
    """
    if slug is not None:
        check_user_slug(slug)
    doc = decode_upload(raw, max_bytes=max_graph_bytes)
    check_upload_fields(doc)
    summary = check_graph(doc)
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
    return {k: metadata[k] for k in KEPT_METADATA if k in metadata}


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


def update_graph(
    session: Session,
    slug: str,
    user: User,
    *,
    visibility: Visibility | None = None,
    title: str | None = None,
) -> GraphRecord:
    """Change a graph's visibility and/or title (its owner or an administrator); None: unchanged."""
    record = get_graph(session, slug, user)
    check_can_edit(record.owner_id, user, "graph")
    if visibility is not None:
        record.visibility = visibility
    if title is not None:
        set_graph_title(record, title)
    session.commit()
    return record


def delete_graph(session: Session, slug: str, user: User) -> None:
    """Delete a graph (its owner or an administrator). The database removes what hangs on it
    (its JSON, saved views, comments: ON DELETE CASCADE) and unlinks the jobs that made it or
    ran on it (SET NULL), so tracing the same request again makes a new graph."""
    record = get_graph(session, slug, user)
    check_can_edit(record.owner_id, user, "graph")
    session.delete(record)
    session.commit()

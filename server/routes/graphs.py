"""Graphs: list and search, fetch (gzip), import, change, delete; their comments and subgraphs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from server import graph_json
from server.deps import CurrentUser, OptionalUser, ServicesDep, SessionDep
from server.errors import PayloadTooLarge
from server.routes.params import Limit, Offset, SlugPath
from server.schemas import (
    CommentCreate,
    CommentPublic,
    GraphPage,
    GraphPublic,
    GraphUpdate,
    Slug,
    SubgraphFields,
    SubgraphPublic,
    Text,
)
from server.services import comments, graphs, subgraphs
from server.tables import Visibility

router = APIRouter(prefix="/api/graphs", tags=["graphs"])


@router.get("")
def list_graphs(
    user: OptionalUser,
    session: SessionDep,
    services: ServicesDep,
    q: Annotated[Text | None, Query(max_length=500, description="Words the prompt contains.")] = None,
    model: Annotated[str | None, Query(max_length=200)] = None,
    owner: Annotated[str | None, Query(max_length=40)] = None,
    mine: bool = False,
    limit: Limit = 50,
    offset: Offset = 0,
) -> GraphPage:
    """Public graphs (and your own), newest first."""
    limit = min(limit, services.settings.max_page_size)
    items, total = graphs.list_graphs(
        session, user=user, query=q, model=model, owner=owner, mine=mine, limit=limit, offset=offset
    )
    return GraphPage(items=[GraphPublic.of(g) for g in items], total=total, limit=limit, offset=offset)


@router.post("/import", status_code=201)
async def import_graph(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
    slug: Slug | None = None,
    visibility: Visibility = Visibility.PUBLIC,
) -> GraphPublic:
    """Upload a graph JSON made by circuit-tracer, Neuronpedia or Glassbox as the request body
    (application/json, or gzip of it)."""
    raw = await _read_body(request, services.settings.max_upload_bytes)
    record = await run_in_threadpool(
        graphs.import_graph,
        session,
        raw,
        user=user,
        slug=slug,
        visibility=visibility,
        max_graph_bytes=services.settings.max_graph_bytes,
    )
    return GraphPublic.of(record)


async def _read_body(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"the upload is {declared} bytes; the limit is {max_bytes}")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > max_bytes:
            raise PayloadTooLarge(f"the upload is over the limit of {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.get("/{slug}")
def get_graph(slug: SlugPath, user: OptionalUser, session: SessionDep) -> GraphPublic:
    """A graph's metadata; its JSON is at `data_url`."""
    return GraphPublic.of(graphs.get_graph(session, slug, user))


@router.get(
    "/{slug}/data",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}, "description": "The graph JSON"}},
)
def get_graph_data(slug: SlugPath, request: Request, user: OptionalUser, session: SessionDep) -> Response:
    """The graph JSON (Neuronpedia schema), sent gzip-encoded as stored when the client accepts it."""
    record = graphs.get_graph(session, slug, user)
    data = graphs.get_graph_data(session, record)
    cache = "public, max-age=300" if record.visibility == Visibility.PUBLIC else "private, max-age=300"
    headers = {"Vary": "Accept-Encoding", "Cache-Control": cache}
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(data, media_type="application/json", headers=headers)
    return Response(graph_json.decompress(data), media_type="application/json", headers=headers)


@router.patch("/{slug}")
def update_graph(slug: SlugPath, body: GraphUpdate, user: CurrentUser, session: SessionDep) -> GraphPublic:
    return GraphPublic.of(graphs.update_graph(session, slug, user, visibility=body.visibility))


@router.delete("/{slug}", status_code=204)
def delete_graph(slug: SlugPath, user: CurrentUser, session: SessionDep) -> Response:
    graphs.delete_graph(session, slug, user)
    return Response(status_code=204)


@router.get("/{slug}/comments", tags=["comments"])
def list_graph_comments(slug: SlugPath, user: OptionalUser, session: SessionDep) -> list[CommentPublic]:
    graph = graphs.get_graph(session, slug, user)
    return [CommentPublic.of(c) for c in comments.list_comments(session, graph=graph)]


@router.post("/{slug}/comments", status_code=201, tags=["comments"])
def add_graph_comment(
    slug: SlugPath, body: CommentCreate, user: CurrentUser, session: SessionDep
) -> CommentPublic:
    graph = graphs.get_graph(session, slug, user)
    return CommentPublic.of(comments.add_comment(session, user, body.text, graph=graph))


@router.get("/{slug}/subgraphs", tags=["subgraphs"])
def list_subgraphs(slug: SlugPath, user: OptionalUser, session: SessionDep) -> list[SubgraphPublic]:
    graph = graphs.get_graph(session, slug, user)
    return [SubgraphPublic.of(s) for s in subgraphs.list_subgraphs(session, graph, user)]


@router.post("/{slug}/subgraphs", status_code=201, tags=["subgraphs"])
def create_subgraph(
    slug: SlugPath, body: SubgraphFields, user: CurrentUser, session: SessionDep
) -> SubgraphPublic:
    """Save the viewer state (pinned nodes, supernodes, labels, thresholds) under a new share slug."""
    graph = graphs.get_graph(session, slug, user)
    return SubgraphPublic.of(subgraphs.create_subgraph(session, graph, user, body.model_dump()))

"""Graphs: list and search, fetch (gzip), import, change, delete; their comments and subgraphs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from glassbox.graph.schemas import load_schema
from persistence.errors import PayloadTooLarge
from persistence.graphs import decompress
from persistence.tables import Visibility
from server.deps import CurrentUser, OptionalUser, ServicesDep, SessionDep
from server.errors import problems
from server.limits import limit_uploads, upload_slot
from server.routes.params import Limit, Offset, SlugPath
from server.schemas import (
    CommentCreate,
    CommentPublic,
    GraphListItem,
    GraphPage,
    GraphPublic,
    GraphUpdate,
    Slug,
    SubgraphFields,
    SubgraphPublic,
    Text,
)
from server.services import comments, graphs, subgraphs
from server.strict_json import StrictJSONRoute

router = APIRouter(prefix="/api/graphs", tags=["graphs"], route_class=StrictJSONRoute)


@router.get("", responses=problems(401))
def list_graphs(
    user: OptionalUser,
    session: SessionDep,
    services: ServicesDep,
    q: Annotated[Text | None, Query(max_length=500, description="Words the prompt contains.")] = None,
    model: Annotated[Text | None, Query(max_length=200)] = None,
    owner: Annotated[Text | None, Query(max_length=40)] = None,
    mine: bool = False,
    limit: Limit = 50,
    offset: Offset = 0,
) -> GraphPage:
    """Public graphs (and your own), newest first; each row's prompt is shortened (the graph's
    own GET has all of it)."""
    limit = min(limit, services.settings.max_page_size)
    items, total = graphs.list_graphs(
        session, user=user, query=q, model=model, owner=owner, mine=mine, limit=limit, offset=offset
    )
    return GraphPage(items=[GraphListItem.of(g) for g in items], total=total, limit=limit, offset=offset)


def _upload_body() -> dict[str, Any]:
    """The upload as OpenAPI documents it: graph JSON (the viewers' schema that
    glassbox.graph.schemas vendors), or the gzip of it."""
    graph = {k: v for k, v in load_schema("graph").items() if k not in ("$id", "$schema", "version")}
    gzipped = {"type": "string", "format": "binary", "description": "gzip of the graph JSON"}
    content = {"application/json": {"schema": graph}, "application/gzip": {"schema": gzipped}}
    return {"requestBody": {"required": True, "content": content}}


@router.post(
    "/import", status_code=201, responses=problems(401, 403, 409, 413, 429), openapi_extra=_upload_body()
)
async def import_graph(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
    slug: Slug | None = None,
    visibility: Visibility = Visibility.PUBLIC,
) -> GraphPublic:
    """Upload a graph JSON made by circuit-tracer, Neuronpedia or Glassbox as the request body
    (application/json, or gzip of it). Limits: GLASSBOX_MAX_UPLOAD_BYTES as sent,
    GLASSBOX_MAX_GRAPH_BYTES decompressed, a size per field, GLASSBOX_UPLOAD_RATE_LIMIT_PER_USER
    per account and GLASSBOX_UPLOAD_CONCURRENCY at once per server process."""
    limit_uploads(services, user)
    await run_in_threadpool(session.close)  # hold no connection while a slow client sends the body
    raw = await _read_body(request, services.settings.max_upload_bytes)

    def check_and_store() -> GraphPublic:
        with upload_slot(services):
            record = graphs.import_graph(
                session,
                raw,
                user=user,
                slug=slug,
                visibility=visibility,
                max_graph_bytes=services.settings.max_graph_bytes,
            )
        return GraphPublic.of(record)

    return await run_in_threadpool(check_and_store)


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


@router.get("/{slug}", responses=problems(401, 404))
def get_graph(slug: SlugPath, user: OptionalUser, session: SessionDep) -> GraphPublic:
    """A graph's metadata; its JSON is at `data_url`."""
    return GraphPublic.of(graphs.get_graph(session, slug, user))


@router.get(
    "/{slug}/data",
    response_class=Response,
    responses={
        200: {"content": {"application/json": {}}, "description": "The graph JSON"},
        **problems(401, 404),
    },
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
    return Response(decompress(data), media_type="application/json", headers=headers)


@router.patch("/{slug}", responses=problems(401, 403, 404))
def update_graph(slug: SlugPath, body: GraphUpdate, user: CurrentUser, session: SessionDep) -> GraphPublic:
    """Rename a graph (`title`; empty removes it) or change its visibility: its owner or an
    administrator."""
    record = graphs.update_graph(session, slug, user, visibility=body.visibility, title=body.title)
    return GraphPublic.of(record)


@router.delete("/{slug}", status_code=204, responses=problems(401, 403, 404))
def delete_graph(slug: SlugPath, user: CurrentUser, session: SessionDep) -> Response:
    """Delete a graph with its saved views and comments: its owner or an administrator."""
    graphs.delete_graph(session, slug, user)
    return Response(status_code=204)


@router.get("/{slug}/comments", tags=["comments"], responses=problems(401, 404))
def list_graph_comments(slug: SlugPath, user: OptionalUser, session: SessionDep) -> list[CommentPublic]:
    graph = graphs.get_graph(session, slug, user)
    return [CommentPublic.of(c) for c in comments.list_comments(session, graph=graph)]


@router.post("/{slug}/comments", status_code=201, tags=["comments"], responses=problems(401, 403, 404))
def add_graph_comment(
    slug: SlugPath, body: CommentCreate, user: CurrentUser, session: SessionDep
) -> CommentPublic:
    graph = graphs.get_graph(session, slug, user)
    return CommentPublic.of(comments.add_comment(session, user, body.text, graph=graph))


@router.get("/{slug}/subgraphs", tags=["subgraphs"], responses=problems(401, 404))
def list_subgraphs(slug: SlugPath, user: OptionalUser, session: SessionDep) -> list[SubgraphPublic]:
    graph = graphs.get_graph(session, slug, user)
    return [SubgraphPublic.of(s) for s in subgraphs.list_subgraphs(session, graph, user)]


@router.post("/{slug}/subgraphs", status_code=201, tags=["subgraphs"], responses=problems(401, 403, 404))
def create_subgraph(
    slug: SlugPath, body: SubgraphFields, user: CurrentUser, session: SessionDep
) -> SubgraphPublic:
    """Save the viewer state (pinned nodes, supernodes, labels, thresholds) under a new share slug."""
    graph = graphs.get_graph(session, slug, user)
    return SubgraphPublic.of(subgraphs.create_subgraph(session, graph, user, body.model_dump()))

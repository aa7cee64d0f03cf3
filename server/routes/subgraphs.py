"""Saved subgraphs by their share slug, a graph's suggested subgraph, and comment deletion."""

from __future__ import annotations

from fastapi import APIRouter, Response

from server.deps import CurrentUser, OptionalUser, SessionDep
from server.errors import problems
from server.routes.params import IntId, SlugPath
from server.schemas import SubgraphPublic, SubgraphUpdate, SuggestedSubgraph
from server.services import comments, subgraphs
from server.strict_json import StrictJSONRoute

router = APIRouter(prefix="/api", tags=["subgraphs"], route_class=StrictJSONRoute)


@router.get("/subgraphs/{slug}", responses=problems(401, 404))
def get_subgraph(slug: SlugPath, user: OptionalUser, session: SessionDep) -> SubgraphPublic:
    return SubgraphPublic.of(subgraphs.get_subgraph(session, slug, user))


@router.get("/graphs/{slug}/suggested-subgraph", responses=problems(401, 404, 422))
def suggested_subgraph(slug: SlugPath, user: OptionalUser, session: SessionDep) -> SuggestedSubgraph:
    """Pinned node ids, supernodes and a note for the graph's most likely output, computed from
    its JSON (glassbox.graph.guide): the highest-influence features, the strongest direct edges
    for and against it, and the shares of its influence that end at error nodes and tokens."""
    return SuggestedSubgraph(**subgraphs.suggested_subgraph(session, slug, user))


@router.patch("/subgraphs/{slug}", responses=problems(401, 403, 404))
def update_subgraph(
    slug: SlugPath, body: SubgraphUpdate, user: CurrentUser, session: SessionDep
) -> SubgraphPublic:
    changes = body.model_dump(exclude_unset=True)
    return SubgraphPublic.of(subgraphs.update_subgraph(session, slug, user, changes))


@router.delete("/subgraphs/{slug}", status_code=204, responses=problems(401, 403, 404))
def delete_subgraph(slug: SlugPath, user: CurrentUser, session: SessionDep) -> Response:
    subgraphs.delete_subgraph(session, slug, user)
    return Response(status_code=204)


@router.delete(
    "/comments/{comment_id}", status_code=204, tags=["comments"], responses=problems(401, 403, 404)
)
def delete_comment(comment_id: IntId, user: CurrentUser, session: SessionDep) -> Response:
    comments.delete_comment(session, comment_id, user)
    return Response(status_code=204)

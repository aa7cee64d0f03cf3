"""Saved subgraphs by their share slug, and comment deletion."""

from __future__ import annotations

from fastapi import APIRouter, Response

from server.deps import CurrentUser, OptionalUser, SessionDep
from server.routes.params import IntId, SlugPath
from server.schemas import SubgraphPublic, SubgraphUpdate
from server.services import comments, subgraphs

router = APIRouter(prefix="/api", tags=["subgraphs"])


@router.get("/subgraphs/{slug}")
def get_subgraph(slug: SlugPath, user: OptionalUser, session: SessionDep) -> SubgraphPublic:
    return SubgraphPublic.of(subgraphs.get_subgraph(session, slug, user))


@router.patch("/subgraphs/{slug}")
def update_subgraph(
    slug: SlugPath, body: SubgraphUpdate, user: CurrentUser, session: SessionDep
) -> SubgraphPublic:
    changes = body.model_dump(exclude_unset=True)
    return SubgraphPublic.of(subgraphs.update_subgraph(session, slug, user, changes))


@router.delete("/subgraphs/{slug}", status_code=204)
def delete_subgraph(slug: SlugPath, user: CurrentUser, session: SessionDep) -> Response:
    subgraphs.delete_subgraph(session, slug, user)
    return Response(status_code=204)


@router.delete("/comments/{comment_id}", status_code=204, tags=["comments"])
def delete_comment(comment_id: IntId, user: CurrentUser, session: SessionDep) -> Response:
    comments.delete_comment(session, comment_id, user)
    return Response(status_code=204)

"""Comments on graphs and on features."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from persistence.errors import NotFound
from persistence.tables import Comment, Feature, GraphRecord, User
from server.services.common import check_can_edit


def list_comments(
    session: Session, *, graph: GraphRecord | None = None, feature: Feature | None = None
) -> list[Comment]:
    if graph is not None:
        where = Comment.graph_id == graph.id
    elif feature is not None:
        where = Comment.feature_id == feature.id
    else:
        return []
    return list(session.scalars(select(Comment).where(where).order_by(Comment.created_at, Comment.id)))


def add_comment(
    session: Session,
    user: User,
    text: str,
    *,
    graph: GraphRecord | None = None,
    feature: Feature | None = None,
) -> Comment:
    comment = Comment(
        graph_id=graph.id if graph else None,
        feature_id=feature.id if feature else None,
        author_id=user.id,
        text=text,
    )
    session.add(comment)
    session.commit()
    session.refresh(comment)
    return comment


def delete_comment(session: Session, comment_id: int, user: User) -> None:
    comment = session.get(Comment, comment_id)
    if comment is None:
        raise NotFound(f"comment {comment_id} not found")
    check_can_edit(comment.author_id, user, "comment")
    session.delete(comment)
    session.commit()

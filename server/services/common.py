"""Helpers shared by the services: ownership and visibility checks."""

from __future__ import annotations

from persistence.errors import Forbidden, NotFound, Unauthorized
from persistence.tables import User, Visibility


def is_owner_or_admin(owner_id: int | None, user: User | None) -> bool:
    return user is not None and (user.is_admin or (owner_id is not None and owner_id == user.id))


def check_visible(visibility: Visibility, owner_id: int | None, user: User | None, what: str) -> None:
    """Private things are reported as missing to everyone but their owner and admins."""
    if visibility == Visibility.PRIVATE and not is_owner_or_admin(owner_id, user):
        raise NotFound(f"{what} not found")


def check_can_edit(owner_id: int | None, user: User | None, what: str) -> None:
    if user is None:
        raise Unauthorized("sign in to change this")
    if not is_owner_or_admin(owner_id, user):
        raise Forbidden(f"only the owner of this {what} or an administrator may change it")

"""Helpers shared by the services: slugs, ownership and visibility checks."""

from __future__ import annotations

import re
import secrets

from server.errors import Forbidden, NotFound, Unauthorized
from server.tables import User, Visibility

SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$"
_NON_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(text: str, *, max_len: int = 40) -> str:
    return _NON_SLUG.sub("-", text.lower()).strip("-")[:max_len].strip("-")


def new_slug(*parts: str) -> str:
    """A readable slug with a random tail, e.g. `gemma-the-capital-of-texas-3fa9c1`."""
    stem = "-".join(p for p in (slugify(part) for part in parts) if p)
    tail = secrets.token_hex(3)
    return f"{stem[:80]}-{tail}" if stem else tail


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

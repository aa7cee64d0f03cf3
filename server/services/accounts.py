"""Accounts: registration, login sessions, API keys, and resolving who sent a request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from persistence.db import serialize_on
from persistence.errors import Conflict, Forbidden, NotFound, Unauthorized
from persistence.tables import ApiKey, LoginSession, User, utcnow
from server import security

API_KEY_TOUCH_INTERVAL = timedelta(minutes=5)


@dataclass(frozen=True)
class NewSession:
    user: User
    token: str  # goes in the cookie; only its hash is stored


def register(
    session: Session,
    hasher: PasswordHasher,
    *,
    username: str,
    password: str,
    first_user_is_admin: bool,
    min_password_score: int = 0,
) -> User:
    """A new account, its password at least `min_password_score` strong (0-4). With
    `first_user_is_admin` the first account is an administrator: counting the accounts and
    adding this one run alone (serialize_on), so concurrent first registrations make exactly
    one."""
    username = username.lower()
    security.check_password_strength(password, username=username, min_score=min_password_score)
    password_hash = hasher.hash(password)  # slow on purpose: before the lock, not under it
    serialize_on(session, User.__table__)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"the username {username!r} is taken")
    is_first = (session.scalar(select(func.count()).select_from(User)) or 0) == 0
    user = User(username=username, password_hash=password_hash, is_admin=first_user_is_admin and is_first)
    session.add(user)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"the username {username!r} is taken") from exc
    return user


def login(
    session: Session, hasher: PasswordHasher, *, username: str, password: str, max_age_s: int
) -> NewSession:
    user = session.scalar(select(User).where(User.username == username.lower()))
    if user is None:
        security.burn_verify_time(hasher, password)
    if user is None or not security.verify_password(hasher, user.password_hash, password):
        raise Unauthorized("wrong username or password")
    if user.disabled:
        raise Forbidden("this account is disabled")
    token = security.new_session_token()
    session.add(
        LoginSession(
            token_hash=security.sha256_hex(token),
            user_id=user.id,
            expires_at=utcnow() + timedelta(seconds=max_age_s),
        )
    )
    session.commit()
    return NewSession(user, token)


def logout(session: Session, token: str) -> None:
    row = session.scalar(select(LoginSession).where(LoginSession.token_hash == security.sha256_hex(token)))
    if row is not None:
        session.delete(row)
        session.commit()


def user_for_session_token(session: Session, token: str) -> User | None:
    row = session.scalar(select(LoginSession).where(LoginSession.token_hash == security.sha256_hex(token)))
    if row is None or row.expires_at < utcnow() or row.user.disabled:
        return None
    return row.user


def user_for_api_key(session: Session, key: str) -> User | None:
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == security.sha256_hex(key)))
    if row is None or row.revoked_at is not None or row.user.disabled:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > API_KEY_TOUCH_INTERVAL:
        row.last_used_at = now
        session.commit()
    return row.user


def create_api_key(session: Session, user: User, *, name: str) -> tuple[ApiKey, str]:
    key = security.new_api_key()
    row = ApiKey(
        user_id=user.id,
        name=name,
        prefix=security.api_key_display_prefix(key),
        key_hash=security.sha256_hex(key),
    )
    session.add(row)
    session.commit()
    return row, key


def list_api_keys(session: Session, user: User) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).where(ApiKey.user_id == user.id).order_by(ApiKey.id)))


def revoke_api_key(session: Session, user: User, key_id: int) -> ApiKey:
    row = session.get(ApiKey, key_id)
    if row is None or row.user_id != user.id:
        raise NotFound(f"API key {key_id} not found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.commit()
    return row


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username.lower()))
    if user is None:
        raise NotFound(f"user {username!r} not found")
    return user


def set_admin(session: Session, username: str, *, is_admin: bool) -> User:
    user = get_user(session, username)
    user.is_admin = is_admin
    session.commit()
    return user

"""FastAPI dependencies: the app's services, the database session, and who is asking.

Authentication, in order: `Authorization: Bearer <API key>` (or `X-API-Key`), then the
session cookie. A write (POST/PUT/PATCH/DELETE) authenticated by the cookie must carry the
session's CSRF token in `X-CSRF-Token`; API keys are not sent by browsers on their own, so
they need none.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated

from argon2 import PasswordHasher
from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from prometheus_client import CollectorRegistry
from redis import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from persistence.db import SessionFactory
from persistence.errors import Forbidden, Unauthorized
from persistence.settings import Settings
from persistence.tables import User
from server import security
from server.ratelimit import RateLimiter
from server.services import accounts
from server.services.preview import PreviewService
from worker.maintenance import MaintenanceLoop
from worker.queue import JobQueue

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
CSRF_HEADER = "X-CSRF-Token"
CSRF_COOKIE = "glassbox_csrf"


@dataclass
class AppServices:
    """Everything `create_app` builds, kept on `app.state.services`."""

    settings: Settings
    engine: Engine
    sessions: SessionFactory
    queue: JobQueue
    limiter: RateLimiter
    preview: PreviewService
    hasher: PasswordHasher
    secret_key: str
    templates: Jinja2Templates
    metrics: CollectorRegistry
    maintenance: MaintenanceLoop
    redis: Redis | None = None
    upload_slots: threading.BoundedSemaphore = field(default_factory=threading.BoundedSemaphore)


def get_services(request: Request) -> AppServices:
    return request.app.state.services


ServicesDep = Annotated[AppServices, Depends(get_services)]


def get_session(services: ServicesDep) -> Iterator[Session]:
    with services.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_optional_user(request: Request, session: SessionDep, services: ServicesDep) -> User | None:
    return resolve_user(request, session, services)


def resolve_user(request: Request, session: Session, services: AppServices) -> User | None:
    """Who sent `request` (None: anonymous); raises on a bad key or a cookie write without CSRF."""
    key = _api_key_of(request)
    if key is not None:
        user = accounts.user_for_api_key(session, key)
        if user is None:
            raise Unauthorized("the API key is unknown or revoked")
        return user
    token = request.cookies.get(services.settings.session_cookie_name)
    if not token:
        return None
    user = accounts.user_for_session_token(session, token)
    if user is None:
        return None
    if request.method not in SAFE_METHODS:
        presented = request.headers.get(CSRF_HEADER)
        if not security.csrf_matches(services.secret_key, token, presented):
            raise Forbidden(f"missing or wrong CSRF token: send the {CSRF_HEADER} header with writes")
    return user


def _api_key_of(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key") or None


OptionalUser = Annotated[User | None, Depends(get_optional_user)]


def get_current_user(user: OptionalUser) -> User:
    if user is None:
        raise Unauthorized("sign in (or send an API key) to do this")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def get_admin(user: CurrentUser) -> User:
    if not user.is_admin:
        raise Forbidden("administrators only")
    return user


AdminUser = Annotated[User, Depends(get_admin)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"

"""Accounts: register, log in and out, API keys, users."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from server import security
from server.deps import CSRF_COOKIE, AdminUser, CurrentUser, ServicesDep, SessionDep, client_address
from server.errors import Forbidden
from server.ratelimit import enforce
from server.routes.params import IntId, NamePath
from server.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    LoginRequest,
    SessionInfo,
    UserCreate,
    UserPublic,
)
from server.services import accounts
from server.settings import Settings

router = APIRouter(prefix="/api", tags=["accounts"])


def _limit_auth(services: ServicesDep, request: Request) -> None:
    s = services.settings
    enforce(
        services.limiter,
        f"auth:addr:{client_address(request)}",
        limit=s.auth_rate_limit_per_address,
        window_s=s.auth_rate_limit_window_s,
        what="sign-in attempts",
    )


@router.post("/auth/register", status_code=201)
def register(body: UserCreate, request: Request, session: SessionDep, services: ServicesDep) -> UserPublic:
    """Create an account. The first account becomes an administrator (GLASSBOX_FIRST_USER_IS_ADMIN)."""
    if not services.settings.allow_registration:
        raise Forbidden("registration is closed on this server")
    _limit_auth(services, request)
    user = accounts.register(
        session,
        services.hasher,
        username=body.username,
        password=body.password,
        first_user_is_admin=services.settings.first_user_is_admin,
    )
    return UserPublic.of(user)


@router.post("/auth/login")
def login(
    body: LoginRequest, request: Request, response: Response, session: SessionDep, services: ServicesDep
) -> SessionInfo:
    """Start a cookie session. Writes with the cookie need the returned `csrf_token` as X-CSRF-Token."""
    _limit_auth(services, request)
    s = services.settings
    new = accounts.login(
        session,
        services.hasher,
        username=body.username,
        password=body.password,
        max_age_s=s.session_max_age_s,
    )
    csrf = security.csrf_token(services.secret_key, new.token)
    _set_cookie(response, s, s.session_cookie_name, new.token, http_only=True)
    _set_cookie(response, s, CSRF_COOKIE, csrf, http_only=False)
    return SessionInfo(user=UserPublic.of(new.user), csrf_token=csrf)


def _set_cookie(response: Response, s: Settings, name: str, value: str, *, http_only: bool) -> None:
    response.set_cookie(
        name,
        value,
        max_age=s.session_max_age_s,
        httponly=http_only,
        secure=s.cookie_secure,
        samesite=s.cookie_samesite,
        path="/",
    )


@router.post("/auth/logout", status_code=204)
def logout(request: Request, user: CurrentUser, session: SessionDep, services: ServicesDep) -> Response:
    """End the cookie session."""
    token = request.cookies.get(services.settings.session_cookie_name)
    if token:
        accounts.logout(session, token)
    response = Response(status_code=204)
    response.delete_cookie(services.settings.session_cookie_name, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.get("/auth/me")
def me(user: CurrentUser) -> UserPublic:
    return UserPublic.of(user)


@router.get("/auth/keys")
def list_keys(user: CurrentUser, session: SessionDep) -> list[ApiKeyPublic]:
    return [ApiKeyPublic.of(k) for k in accounts.list_api_keys(session, user)]


@router.post("/auth/keys", status_code=201)
def create_key(body: ApiKeyCreate, user: CurrentUser, session: SessionDep) -> ApiKeyCreated:
    """A new API key; the key is in the answer once and never again."""
    row, key = accounts.create_api_key(session, user, name=body.name)
    return ApiKeyCreated(**ApiKeyPublic.of(row).model_dump(), key=key)


@router.delete("/auth/keys/{key_id}")
def revoke_key(key_id: IntId, user: CurrentUser, session: SessionDep) -> ApiKeyPublic:
    return ApiKeyPublic.of(accounts.revoke_api_key(session, user, key_id))


@router.get("/users/{username}")
def get_user(username: NamePath, session: SessionDep) -> UserPublic:
    return UserPublic.of(accounts.get_user(session, username))


@router.put("/users/{username}/admin")
def set_admin(username: NamePath, is_admin: bool, admin: AdminUser, session: SessionDep) -> UserPublic:
    """Grant or take away the administrator role (administrators only)."""
    return UserPublic.of(accounts.set_admin(session, username, is_admin=is_admin))

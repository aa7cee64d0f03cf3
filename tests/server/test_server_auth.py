"""Accounts and security: sessions, API keys, admin role, CSRF, cookie flags, headers, rate limits."""

from __future__ import annotations

from gbx_stack import PASSWORD
from sqlalchemy import select

from persistence.tables import ApiKey, LoginSession, User


def test_register_login_me_logout(pg_stack):
    stack = pg_stack
    client = stack.new_client()
    user = stack.register(client, "Alice")
    assert user["username"] == "alice" and user["is_admin"] is False  # the admin registered first
    assert client.get("/api/auth/me").status_code == 401
    stack.login(client, "ALICE")
    assert client.get("/api/auth/me").json()["username"] == "alice"

    with stack.services.sessions() as session:
        stored = session.scalar(select(User.password_hash).where(User.username == "alice"))
        token_hashes = session.scalars(select(LoginSession.token_hash)).all()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert client.cookies.get("glassbox_session") not in token_hashes  # only the hash is kept

    assert client.post("/api/auth/logout").status_code == 204
    assert client.get("/api/auth/me").status_code == 401


def test_register_and_login_errors(pg_stack):
    stack = pg_stack
    client = stack.new_client()
    stack.register(client, "bob")
    r = client.post("/api/auth/register", json={"username": "BOB", "password": PASSWORD})
    assert r.status_code == 409 and "taken" in r.json()["error"]["message"]
    r = client.post("/api/auth/register", json={"username": "x", "password": PASSWORD})
    assert r.status_code == 422 and "username" in r.json()["error"]["message"]
    r = client.post("/api/auth/register", json={"username": "carol", "password": "short"})
    assert r.status_code == 422 and "password" in r.json()["error"]["message"]
    r = client.post("/api/auth/login", json={"username": "bob", "password": "wrong password"})
    assert r.status_code == 401 and r.json()["error"]["message"] == "wrong username or password"
    r = client.post("/api/auth/login", json={"username": "nobody", "password": "wrong password"})
    assert r.status_code == 401 and r.json()["error"]["message"] == "wrong username or password"


def test_first_user_is_admin_and_admin_only_routes(pg_stack):
    stack = pg_stack
    assert stack.client.get("/api/auth/me").json()["is_admin"] is True
    dave = stack.user_client("dave")
    r = dave.post("/api/models", json={"name": "other", "source": "x"})
    assert r.status_code == 403 and r.json()["error"]["message"] == "administrators only"
    assert stack.client.put("/api/users/dave/admin", params={"is_admin": True}).json()["is_admin"] is True
    assert dave.post("/api/models", json={"name": "other", "source": "x"}).status_code == 201


def test_anonymous_may_read_but_not_write(pg_stack):
    stack = pg_stack
    anon = stack.new_client()
    assert anon.get("/api/models").status_code == 200
    assert anon.get("/api/graphs").status_code == 200
    r = anon.post("/api/traces", json={"model": "tiny", "prompt": "hi"})
    assert r.status_code == 401 and "sign in" in r.json()["error"]["message"]


def test_api_keys_authenticate_without_csrf_and_can_be_revoked(pg_stack):
    stack = pg_stack
    r = stack.client.post("/api/auth/keys", json={"name": "script"})
    assert r.status_code == 201
    created = r.json()
    key = created["key"]
    assert key.startswith("gbx_") and created["prefix"] == key[:12]
    with stack.services.sessions() as session:
        assert session.scalar(select(ApiKey.key_hash)) != key

    script = stack.new_client(Authorization=f"Bearer {key}")  # no cookie, no CSRF header
    assert script.get("/api/auth/me").json()["username"] == "admin"
    assert stack.submit(script, "from a script")["status"] == "queued"
    assert stack.new_client(**{"X-API-Key": key}).get("/api/auth/me").status_code == 200

    listed = stack.client.get("/api/auth/keys").json()
    assert [k["name"] for k in listed] == ["script"] and "key" not in listed[0]
    assert stack.client.delete(f"/api/auth/keys/{created['id']}").json()["revoked"] is True
    r = script.get("/api/auth/me")
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]
    bad = stack.new_client(Authorization="Bearer gbx_not-a-key")
    assert bad.get("/api/graphs").status_code == 401


def test_cookie_writes_need_the_csrf_token(pg_stack):
    stack = pg_stack
    client = stack.new_client()
    stack.register(client, "erin")
    token = stack.login(client, "erin")
    del client.headers["X-CSRF-Token"]
    r = client.post("/api/traces", json={"model": "tiny", "prompt": "csrf"})
    assert r.status_code == 403 and "CSRF" in r.json()["error"]["message"]
    r = client.post(
        "/api/traces", json={"model": "tiny", "prompt": "csrf"}, headers={"X-CSRF-Token": "0" * 64}
    )
    assert r.status_code == 403
    assert client.post("/api/auth/logout").status_code == 403
    assert client.get("/api/auth/me").status_code == 200  # reads need no token
    r = client.post("/api/traces", json={"model": "tiny", "prompt": "csrf"}, headers={"X-CSRF-Token": token})
    assert r.status_code == 202
    assert client.cookies.get("glassbox_csrf") == token  # readable double-submit cookie


def test_cookie_flags(pg_stack):
    r = pg_stack.new_client().post("/api/auth/login", json={"username": "admin", "password": PASSWORD})
    cookies = {c.split("=", 1)[0]: c.lower() for c in r.headers.get_list("set-cookie")}
    session_cookie, csrf_cookie = cookies["glassbox_session"], cookies["glassbox_csrf"]
    for flag in ("secure", "samesite=lax", "path=/", "max-age=1209600"):
        assert flag in session_cookie and flag in csrf_cookie
    assert "httponly" in session_cookie and "httponly" not in csrf_cookie


def test_security_headers(pg_stack):
    r = pg_stack.client.get("/api/graphs")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "same-origin"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert "max-age=" in r.headers["strict-transport-security"]  # the test client speaks https
    docs = pg_stack.client.get("/docs")
    assert docs.status_code == 200 and "https:" not in docs.headers["content-security-policy"]
    assert "/static/vendor/swagger-ui-5.35.0/swagger-ui-bundle.js" in docs.text and "cdn" not in docs.text


def test_trace_rate_limits_per_user_and_per_address(pg_url, redis_url, make_stack):
    stack = make_stack(pg_url, redis_url, trace_rate_limit_per_user=2, trace_rate_limit_per_address=3)
    stack.register(stack.client, "admin")
    stack.login(stack.client, "admin")
    stack.seed_registry(stack.client)
    for i in range(2):
        stack.submit(stack.client, f"limited {i}")
    r = stack.client.post("/api/traces", json={"model": "tiny", "prompt": "one too many"})
    assert r.status_code == 429 and "this account" in r.json()["error"]["message"]
    assert 1 <= int(r.headers["retry-after"]) <= 3601

    other = stack.user_client("frank")  # same address (the test client), fresh account
    stack.submit(other, "limited by address")  # the third trace from this address
    r = other.post("/api/traces", json={"model": "tiny", "prompt": "address limit"})
    assert r.status_code == 429 and "this address" in r.json()["error"]["message"]


def test_login_attempts_are_rate_limited_per_address(sqlite_url, make_stack):
    stack = make_stack(sqlite_url, auth_rate_limit_per_address=3)
    client = stack.new_client()
    codes = [
        client.post("/api/auth/login", json={"username": "x", "password": "wrong password"}).status_code
        for _ in range(4)
    ]
    assert codes == [401, 401, 401, 429]

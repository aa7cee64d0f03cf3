"""The server under hostile and concurrent use: connection-pool exhaustion, the first-admin
race, redirects after login, invalid Unicode and non-finite numbers in JSON, upload size and
amplification, reserved slugs, rate limits when Redis fails, weak passwords, and what the API
tells about other people."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import anyio.to_thread
import pytest
from fastapi.routing import APIRoute
from gbx_fakes import fake_graph_json
from gbx_stack import BASE_URL, PASSWORD, Stack
from sqlalchemy import select, update

import server.limits
from firststart import store
from firststart.featured import FEATURED
from persistence import registry
from persistence.graphs import GraphOrigin, free_slug, store_graph
from persistence.settings import Settings
from persistence.tables import Feature, GraphRecord, GraphSource, User, Visibility
from server.redirects import same_site_path
from server.strict_json import StrictJSONRoute

JSON = {"Content-Type": "application/json"}


def _post_raw(client: Any, path: str, body: bytes, *, method: str = "POST", **params: Any) -> Any:
    return client.request(method, path, content=body, headers=JSON, params=params)


def _import(client: Any, doc: dict[str, Any], **params: Any) -> Any:
    return _post_raw(client, "/api/graphs/import", json.dumps(doc).encode(), **params)


def _seeded(stack: Stack) -> Stack:
    stack.register(stack.client, "admin")
    stack.login(stack.client, "admin")
    stack.seed_registry(stack.client)
    return stack


# ---- the connection pool fits the request threads; a wait for one is a 503 ---------------


def _thread_tokens(stack: Stack) -> int:
    """Threads the running app gives to blocking handlers (anyio's default limiter in its loop)."""
    return int(
        stack.client.portal.call(lambda: anyio.to_thread.current_default_thread_limiter().total_tokens)
    )


@pytest.mark.parametrize("db", ["postgres", "sqlite"])
def test_the_pool_holds_a_connection_for_every_request_thread(db, request, make_stack):
    url = request.getfixturevalue("pg_url" if db == "postgres" else "sqlite_url")
    stack = make_stack(url)
    pool = stack.services.engine.pool
    threads = _thread_tokens(stack)
    assert threads == stack.settings.request_threads
    # request threads, plus the maintenance loop, in-process job and heartbeat threads
    assert pool.size() >= threads + 2 * stack.settings.inprocess_workers + 1


def test_a_request_that_cannot_get_a_connection_is_a_quick_503(pg_url, make_stack):
    stack = make_stack(pg_url, db_pool_timeout_s=0.5)
    engine = stack.services.engine
    capacity = engine.pool.size() + max(engine.pool._max_overflow, 0)
    held = [engine.connect() for _ in range(capacity)]
    try:
        start = time.monotonic()
        r = stack.new_client().get("/api/graphs/some-graph")
        elapsed = time.monotonic() - start
    finally:
        for conn in held:
            conn.close()
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "unavailable" and int(r.headers["retry-after"]) >= 1
    assert elapsed < 10
    assert stack.new_client().get("/api/graphs/some-graph").status_code == 404  # and back once free


# ---- exactly one first administrator ----------------------------------------------------


class SlowHasher:
    """Hashes like the real one, slowly: widens any window between "count users" and "insert"."""

    def __init__(self, inner: Any, delay_s: float):
        self.inner, self.delay_s = inner, delay_s

    def hash(self, password: str) -> str:
        time.sleep(self.delay_s)
        return self.inner.hash(password)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.mark.parametrize("db", ["postgres", "sqlite"])
def test_concurrent_first_registrations_make_exactly_one_admin(db, request, make_stack):
    url = request.getfixturevalue("pg_url" if db == "postgres" else "sqlite_url")
    stack = make_stack(url, auth_rate_limit_per_address=0)
    stack.services.hasher = SlowHasher(stack.services.hasher, 0.2)
    n = 8
    barrier = threading.Barrier(n)

    def register(i: int) -> Any:
        client = stack.new_client()
        barrier.wait()
        return client.post("/api/auth/register", json={"username": f"racer{i}", "password": PASSWORD})

    with ThreadPoolExecutor(n) as pool:
        answers = list(pool.map(register, range(n)))
    assert [a.status_code for a in answers] == [201] * n, [a.text for a in answers]
    assert sum(a.json()["is_admin"] for a in answers) == 1
    with stack.services.sessions() as session:
        assert len(session.scalars(select(User.id).where(User.is_admin.is_(True))).all()) == 1


# ---- redirects after login stay on this site ----------------------------------------------

HOSTILE_NEXT = [
    "/\t/evil.example/x",
    "/\n/evil.example/x",
    "/\r\n/evil.example/x",
    "\t//evil.example/x",
    " //evil.example/x",
    "//evil.example/x",
    "///evil.example/x",
    "/\\evil.example/x",
    "\\/evil.example/x",
    "/\t\\evil.example",
    "https://evil.example/x",
    "HTTPS:evil.example",
    "javascript:alert(1)",
    "evil.example/x",
    "",
    "/x\x00y",
]


@pytest.mark.parametrize("value", HOSTILE_NEXT, ids=repr)
def test_unsafe_next_values_fall_back(value):
    assert same_site_path(value, fallback="/") == "/"


@pytest.mark.parametrize(
    "value", ["/", "/graph/abc", "/graph/abc?pinnedIds=1,2#x", "/features/a/b/0/1", "/%2F%2Fx"]
)
def test_same_site_paths_are_kept(value):
    assert same_site_path(value, fallback="/") == value


@pytest.mark.parametrize("value", HOSTILE_NEXT + ["/graph/abc?x=1"], ids=repr)
def test_what_the_browser_would_open_is_always_this_site(value):
    """Browsers drop tabs and newlines and read backslashes as slashes; whatever comes out of
    the check, resolved the way a browser does, stays on the page's own origin."""
    kept = same_site_path(value, fallback="/")
    browser_view = kept.replace("\t", "").replace("\n", "").replace("\r", "").replace("\\", "/")
    assert urlsplit(urljoin(BASE_URL + "/login", browser_view)).netloc == urlsplit(BASE_URL).netloc


@pytest.mark.parametrize("page", ["/login", "/register"])
@pytest.mark.parametrize(
    "query", ["next=/%09/evil.example/x", "next=/%0a/evil.example/x", "next=//evil.example"]
)
def test_login_and_register_pages_drop_an_unsafe_next(shared_pg_stack, page, query):
    r = shared_pg_stack.new_client().get(f"{page}?{query}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == page


def test_login_page_keeps_a_safe_next(shared_pg_stack):
    r = shared_pg_stack.new_client().get("/login?next=%2Fgraph%2Fabc%3Fx%3D1", follow_redirects=False)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")


# ---- invalid Unicode and non-finite numbers are a 422 at the edge ------------------

SURROGATE = "\\ud800abc"  # a lone surrogate as a JSON escape: valid JSON, not valid Unicode


def _bad_text_requests(stack: Stack) -> list[tuple[str, str, bytes]]:
    r = _import(stack.client, fake_graph_json("a graph to comment on", "x"), slug="commented")
    assert r.status_code == 201, r.text
    s = SURROGATE
    return [
        ("POST", "/api/auth/login", f'{{"username": "{s}", "password": "x"}}'.encode()),
        ("POST", "/api/auth/register", f'{{"username": "abc", "password": "{s} long enough pw"}}'.encode()),
        ("PUT", "/api/features/tiny/tc/0/1/label", f'{{"text": "{s}", "base_version": 0}}'.encode()),
        ("POST", "/api/features/tiny/tc/0/1/comments", f'{{"text": "{s}"}}'.encode()),
        ("POST", "/api/graphs/commented/comments", f'{{"text": "{s}"}}'.encode()),
        ("POST", "/api/auth/keys", f'{{"name": "{s}"}}'.encode()),
        ("POST", "/api/traces", f'{{"model": "tiny", "prompt": "{s}"}}'.encode()),
        ("POST", "/api/models/tiny/tokenize", f'{{"prompt": "{s}"}}'.encode()),
        ("PUT", "/api/features/tiny/tc/0/1/dashboard", f'{{"dashboard": {{"{s}": 1}}}}'.encode()),
        ("POST", "/api/graphs/commented/subgraphs", f'{{"title": "{s}"}}'.encode()),
    ]


def test_lone_surrogates_are_refused_with_422_everywhere(pg_stack):
    for method, path, body in _bad_text_requests(pg_stack):
        r = _post_raw(pg_stack.client, path, body, method=method)
        assert r.status_code == 422, (path, r.status_code, r.text)
        assert "Unicode" in r.json()["error"]["message"], (path, r.text)


def test_raw_surrogate_bytes_are_refused_too(pg_stack):
    body = b'{"username": "\xed\xa0\x80abc", "password": "x"}'  # a surrogate encoded as UTF-8 bytes
    r = _post_raw(pg_stack.client, "/api/auth/login", body)
    assert r.status_code == 422, r.text


def test_graph_upload_with_a_lone_surrogate_is_refused(pg_stack):
    text = json.dumps(fake_graph_json("placeholder prompt", "x")).replace("placeholder", SURROGATE)
    for body in (text.encode(), gzip.compress(text.encode())):
        r = _post_raw(pg_stack.client, "/api/graphs/import", body)
        assert r.status_code == 422 and "Unicode" in r.json()["error"]["message"], r.text
    emoji = json.dumps(fake_graph_json("placeholder prompt", "x")).replace("placeholder", "\\ud83d\\ude00")
    assert (
        _post_raw(pg_stack.client, "/api/graphs/import", emoji.encode()).status_code == 201
    )  # a pair is fine


def test_surrogates_in_query_and_path_are_not_a_500(pg_stack):
    anon = pg_stack.new_client()
    assert anon.get("/api/graphs?q=%ED%A0%80").status_code == 200  # decoded as U+FFFD, searched
    assert anon.get("/api/graphs/%ED%A0%80").status_code == 404
    assert anon.get("/api/users/%ED%A0%80").status_code == 404


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_refused_and_never_stored(pg_stack, constant):
    body = f'{{"dashboard": {{"act_max": {constant}}}}}'.encode()
    r = _post_raw(pg_stack.client, "/api/features/tiny/tc/0/1/dashboard", body, method="PUT")
    assert r.status_code == 422 and constant.lstrip("-") in r.json()["error"]["message"], r.text
    assert pg_stack.new_client().get("/api/features/tiny/tc/0/1").status_code == 200
    r = _post_raw(
        pg_stack.client, "/api/traces", f'{{"model": "tiny", "prompt": "hi", "x": {constant}}}'.encode()
    )
    assert r.status_code == 422


def test_a_dashboard_stored_with_nan_before_is_still_readable(pg_stack):
    r = pg_stack.client.put("/api/features/tiny/tc/0/2/dashboard", json={"dashboard": {"act_max": 1.0}})
    assert r.status_code == 200, r.text
    with pg_stack.services.sessions() as session:
        session.execute(
            update(Feature)
            .where(Feature.layer == 0, Feature.index == 2)
            .values(dashboard_gz=gzip.compress(b'{"act_max": NaN, "frac_nonzero": Infinity}'))
        )
        session.commit()
    r = pg_stack.new_client().get("/api/features/tiny/tc/0/2")
    assert r.status_code == 200 and r.json()["dashboard"] == {"act_max": None, "frac_nonzero": None}
    page = pg_stack.new_client().get("/features/tiny/tc/0/2", params={"format": "json"})
    assert page.status_code == 200 and page.json()["feature"]["dashboard"]["act_max"] is None


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI keeps included routers whole
        if included is not None:
            yield from _api_routes(included.routes)
        elif isinstance(route, APIRoute):
            yield route


def test_every_api_route_parses_json_strictly(shared_pg_stack):
    routes = list(_api_routes(shared_pg_stack.app.routes))
    assert len(routes) > 30
    assert [r.path for r in routes if not isinstance(r, StrictJSONRoute)] == []


# ---- uploads: per-field and per-graph limits, small list answers, a rate limit -----------


def _gz(doc: dict[str, Any]) -> bytes:
    return gzip.compress(json.dumps(doc).encode())


def test_huge_fields_in_a_small_gzip_upload_are_refused(pg_stack):
    long_prompt = fake_graph_json("short", "x")
    long_prompt["metadata"]["prompt"] = "p" * 2_000_000  # ~2 KB of gzip
    r = _post_raw(pg_stack.client, "/api/graphs/import", _gz(long_prompt))
    assert r.status_code == 422 and "metadata.prompt" in r.json()["error"]["message"], r.text

    many_tokens = fake_graph_json("short", "x")
    many_tokens["metadata"]["prompt_tokens"] = ["t"] * 100_000
    r = _post_raw(pg_stack.client, "/api/graphs/import", _gz(many_tokens))
    assert r.status_code == 422 and "metadata.prompt_tokens" in r.json()["error"]["message"], r.text

    long_clerp = fake_graph_json("short", "x")
    long_clerp["nodes"][0]["clerp"] = "c" * 100_000
    r = _post_raw(pg_stack.client, "/api/graphs/import", _gz(long_clerp))
    assert r.status_code == 422 and "clerp" in r.json()["error"]["message"], r.text

    big_info = fake_graph_json("short", "x")
    big_info["metadata"]["info"] = {"notes": "n" * 1_000_000}
    r = _post_raw(pg_stack.client, "/api/graphs/import", _gz(big_info))
    assert r.status_code == 422 and "metadata.info" in r.json()["error"]["message"], r.text
    assert pg_stack.client.get("/api/graphs").json()["total"] == 0


def test_a_gzip_bomb_is_refused_by_the_default_limit(pg_stack):
    defaults = Settings()
    assert (
        defaults.max_graph_bytes <= 64 * 1024 * 1024 and defaults.max_upload_bytes <= defaults.max_graph_bytes
    )
    doc = fake_graph_json("bomb", "x")
    doc["qParams"]["padding"] = " " * (pg_stack.settings.max_graph_bytes + 1024)  # kept in the JSON only
    body = _gz(doc)
    assert len(body) < 1024 * 1024
    r = _post_raw(pg_stack.client, "/api/graphs/import", body)
    assert r.status_code == 413, r.text


def test_list_answers_and_the_home_page_carry_no_large_fields(pg_stack):
    long_prompt = "lengthy " * 1500  # allowed in a graph (1,501 tokens), too long for a list row
    assert _import(pg_stack.client, fake_graph_json(long_prompt.strip(), "x")).status_code == 201
    anon = pg_stack.new_client()
    item = anon.get("/api/graphs", params={"limit": 1}).json()["items"][0]
    assert len(item["prompt"]) <= 300 and item["prompt"].endswith("…")
    assert "tokens" not in item and "parameters" not in item
    assert len(anon.get(f"/api/graphs/{item['slug']}").json()["prompt"]) == len(long_prompt.strip())
    home = anon.get("/", params={"format": "json"}).json()
    assert all(len(g["prompt"]) <= 300 for g in home["page"]["items"])
    assert len(anon.get("/").content) < 100_000


def test_uploads_are_rate_limited_per_account(pg_url, redis_url, make_stack):
    stack = _seeded(make_stack(pg_url, redis_url, upload_rate_limit_per_user=2))
    for i in range(2):
        assert _import(stack.client, fake_graph_json(f"upload {i}", "x")).status_code == 201
    r = _import(stack.client, fake_graph_json("one too many", "x"))
    assert r.status_code == 429 and "uploads" in r.json()["error"]["message"]


def test_uploads_checked_at_once_are_bounded_per_process(pg_url, make_stack, monkeypatch):
    stack = _seeded(make_stack(pg_url, upload_concurrency=1))
    monkeypatch.setattr(server.limits, "UPLOAD_SLOT_WAIT_S", 0.2)
    assert stack.services.upload_slots.acquire(timeout=1)  # another upload is being checked
    try:
        r = _import(stack.client, fake_graph_json("waits its turn", "x"))
    finally:
        stack.services.upload_slots.release()
    assert r.status_code == 503 and "other uploads" in r.json()["error"]["message"], r.text
    assert _import(stack.client, fake_graph_json("its turn now", "x")).status_code == 201


# ---- reserved slugs: only the setup writes featured-* -------------------------------------


def test_users_cannot_take_reserved_slugs(pg_stack):
    mallory = pg_stack.user_client("mallory")
    r = _import(mallory, fake_graph_json("squat", "x"), slug="featured-jordan")
    assert r.status_code == 422 and "reserved" in r.json()["error"]["message"], r.text
    r = mallory.post("/api/traces", json={"model": "tiny", "prompt": "squat", "slug": "featured-x"})
    assert r.status_code == 422 and "reserved" in r.json()["error"]["message"], r.text
    made = _import(mallory, fake_graph_json("squat", "x", scan="featured"))  # slug made from the scan
    assert made.status_code == 201 and not made.json()["slug"].startswith("featured-")
    with pg_stack.services.sessions() as session:  # what a trace queued before the check stores
        assert not free_slug(session, "featured-jordan").startswith("featured-")


def _squat(stack: Stack, slug: str) -> None:
    """A user's graph under a featured slug, as an older version let anyone make."""
    with stack.services.sessions() as session:
        owner = session.scalar(select(User.id).where(User.username == "admin"))
        origin = GraphOrigin(source=GraphSource.IMPORT, owner_id=owner, visibility=Visibility.PUBLIC)
        record = store_graph(session, fake_graph_json("squatted", "x"), slug="squatter", origin=origin)
        session.flush()
        session.execute(update(GraphRecord).where(GraphRecord.id == record.id).values(slug=slug))
        session.commit()


def test_the_setup_does_not_count_a_squatted_featured_slug_and_takes_it_back(pg_stack):
    jordan = next(item for item in FEATURED if item.key == "jordan")
    _squat(pg_stack, jordan.slug)
    with pg_stack.services.sessions() as session:
        assert store.present_slugs(session, [jordan.slug]) == set()  # not the setup's own: still to do
        assert store.list_featured(session) == []
    assert pg_stack.new_client().get("/", params={"format": "json"}).json()["featured"] == []

    with pg_stack.services.sessions() as session:
        model = registry.find_model(session, "tiny")
        tset = store.find_transcoder_set(session, "tiny", "tc")
        doc = fake_graph_json(jordan.prompt, jordan.slug)
        store.store_featured_graph(
            session, jordan, doc, model=model, tset=tset, scores=(0.5, 0.6), max_feature_nodes=10
        )
    with pg_stack.services.sessions() as session:
        assert store.present_slugs(session, [jordan.slug]) == {jordan.slug}
        moved = session.scalar(select(GraphRecord).where(GraphRecord.prompt == "squatted"))
        assert moved is not None and not moved.slug.startswith("featured-")  # kept, under another slug
    data = pg_stack.new_client().get(f"/api/graphs/{moved.slug}/data").json()
    assert data["metadata"]["slug"] == moved.slug
    featured = pg_stack.new_client().get("/", params={"format": "json"}).json()["featured"]
    assert [(g["slug"], g["owner"], g["title"]) for g in featured] == [(jordan.slug, None, jordan.title)]


# ---- rate limits hold when Redis refuses or hangs -----------------------------------------


@pytest.fixture
def silent_redis() -> Iterator[str]:
    """A TCP port that accepts connections and never answers (a hung Redis)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    listener.close()


@pytest.fixture
def refused_redis() -> str:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    return f"redis://127.0.0.1:{port}/0"


def _wrong_logins(stack: Stack, n: int) -> tuple[list[int], float]:
    client = stack.new_client()
    codes, slowest = [], 0.0
    for _ in range(n):
        start = time.monotonic()
        codes.append(client.post("/api/auth/login", json={"username": "x", "password": "wrong"}).status_code)
        slowest = max(slowest, time.monotonic() - start)
    return codes, slowest


@pytest.mark.parametrize("broken", ["refused_redis", "silent_redis"])
def test_login_limits_hold_when_redis_is_down(broken, request, pg_url, make_stack):
    url = request.getfixturevalue(broken)
    stack = make_stack(pg_url, url, auth_rate_limit_per_address=3, redis_timeout_s=0.3)
    codes, slowest = _wrong_logins(stack, 5)
    assert codes == [401, 401, 401, 429, 429]
    assert slowest < 3.0


def test_a_trace_request_does_not_wait_long_on_a_hung_redis(silent_redis, pg_url, make_stack):
    stack = _seeded(make_stack(pg_url, silent_redis, redis_timeout_s=0.3))
    start = time.monotonic()
    r = stack.client.post("/api/traces", json={"model": "tiny", "prompt": "while redis hangs"})
    assert r.status_code == 202, r.text
    assert time.monotonic() - start < 3.0


# ---- weak passwords -----------------------------------------------------------------------


WEAK = ["password", "12345678", "aaaaaaaa", "qwertyuiop", "Password1!", "weakling2024", "glassbox123"]


@pytest.mark.parametrize("password", WEAK)
def test_weak_passwords_are_refused_with_a_reason(shared_pg_stack, password):
    r = shared_pg_stack.new_client().post(
        "/api/auth/register", json={"username": "weakling", "password": password}
    )
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    assert "password" in message and "guess" in message


# ---- what others learn; deduplicated requests are free ---------------------------------------


def test_other_people_do_not_learn_who_is_an_administrator(pg_stack):
    bob = pg_stack.user_client("bob")
    for client in (pg_stack.new_client(), bob):
        assert "is_admin" not in client.get("/api/users/admin").json()
    assert pg_stack.client.get("/api/users/bob").json()["is_admin"] is False  # administrators see it
    assert bob.get("/api/users/bob").json()["is_admin"] is False  # and so do you, about yourself


def test_a_taken_slug_answers_alike_whoever_holds_it(pg_stack):
    """Slugs are one namespace, so a taken one shows as taken; whether its graph is private,
    or whose it is, does not show."""
    alice = pg_stack.user_client("alice")
    for slug, visibility in (("held-1", "private"), ("held-2", "public")):
        made = _import(alice, fake_graph_json(slug, "x"), slug=slug, visibility=visibility)
        assert made.status_code == 201
    mallory = pg_stack.user_client("mallory")
    answers = [_import(mallory, fake_graph_json("probe", "x"), slug=s) for s in ("held-1", "held-2")]
    assert [a.status_code for a in answers] == [409, 409]
    assert answers[0].text.replace("held-1", "held-2") == answers[1].text


def test_deduplicated_trace_requests_do_not_count_against_the_limit(pg_url, redis_url, make_stack):
    stack = _seeded(
        make_stack(pg_url, redis_url, trace_rate_limit_per_user=2, trace_rate_limit_per_address=2)
    )
    first = stack.submit(stack.client, "the same request")
    for _ in range(4):
        again = stack.submit(stack.client, "the same request")
        assert again["id"] == first["id"] and again["deduplicated"] is True
    stack.submit(stack.client, "a second request")  # the second of two allowed
    r = stack.client.post("/api/traces", json={"model": "tiny", "prompt": "a third request"})
    assert r.status_code == 429


# ---- docs ------------------------------------------------------------------------------------


def test_deployment_docs_explain_limits_and_sizing():
    text = (Path(__file__).resolve().parents[2] / "docs" / "deployment.md").read_text()
    assert "## Limits and sizing" in text
    for name in ("GLASSBOX_REQUEST_THREADS", "GLASSBOX_DB_POOL_SIZE", "--processes", "max_connections"):
        assert name in text, name

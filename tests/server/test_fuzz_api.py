"""Schemathesis over the whole OpenAPI schema, against the real app on Postgres and Redis.

Every operation of `/openapi.json` gets generated requests, valid and invalid (Schemathesis'
positive and negative modes; its coverage phase adds boundary values such as the largest
allowed integer), sent by each of three callers: anonymous, a user with an API key, and an
administrator with a session cookie and its CSRF token. Every answer must not be a 5xx and must
match what the schema documents for the operation: a declared status code, a declared content
type, a body valid against the declared schema (server/errors.py `problems` declares the
error statuses of each route).

Path parameters are often swapped for things that exist (graphs, subgraphs, a job, a feature,
a label, a comment, users, the API key...), so requests get past the 404s; what a request
deletes, revokes or demotes is made again before the next one. Traces are only queued (RQ;
nothing runs them during the fuzzing): no model is needed, and the seeded jobs ran on the fake
tracer. Requests go through the stack's own test clients (one app, one lifespan) rather than
Schemathesis' ASGI client, which would start the app a second time.

The run is bounded and reproducible: a fixed seed, derandomized generation, no example database,
MAX_EXAMPLES examples per operation, caller and generation mode (about two minutes on two cores).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import pytest
import schemathesis
from _pg_redis import REDIS_URL, empty_tables
from conftest import fast_settings
from fastapi.testclient import TestClient
from gbx_fakes import FakeTracer, fake_cache, fake_graph_json
from gbx_stack import BASE_URL, Stack
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig
from sqlalchemy import update

from firststart.engine import EngineHooks
from glassbox.errors import GlassboxError
from persistence.tables import User
from server.app import create_app

MAX_EXAMPLES = 15
SEED = 20261204
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
CALLERS = ("anonymous", "user_key", "admin_session")
ADMIN, USER = "admin", "fuzzer"
GRAPHS = {"fuzz-graph": USER, "admin-graph": ADMIN}
FEATURE = "/api/features/tiny/tc/0/7"
JSON = {"Content-Type": "application/json"}
# what a request can do to the callers themselves (DELETEs can remove what is seeded)
DISRUPTIVE = {"POST /api/auth/logout", "PUT /api/users/{username}/admin"}


def _config() -> SchemathesisConfig:
    checks: dict[str, Any] = {"enabled": False}
    checks.update({name: {"enabled": True} for name in CHECKS})
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "generation": {
                "mode": "all",
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
            },
            "phases": {
                "coverage": {"enabled": True},
                "stateful": {"enabled": False},
                # answers carry fresh random ids; reusing them would make runs differ
                "fuzzing": {"extra-data-sources": {"responses": False}},
            },
            "checks": checks,
        }
    )


def _openapi_document() -> dict[str, Any]:
    """The app's OpenAPI document. It does not depend on the database or Redis, and an app that
    is never started connects to neither, so it is read at collection time."""
    app = create_app(fast_settings(database_url="sqlite://"), tracer=FakeTracer(), preview_cache=fake_cache())
    return app.openapi()


def _offline_setup_hooks() -> EngineHooks:
    """POST /api/admin/setup runs the setup in the server: here every step fails at once."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise GlassboxError("the fuzzed server sets nothing up")

    return EngineHooks(
        model_present=lambda source: False,
        pull_model=refuse,
        corpus_present=lambda name: False,
        build_corpus=refuse,
        load_model=refuse,
        load_transcoders=refuse,
        train_transcoders=refuse,
        build_features=refuse,
        trace=refuse,
    )


@dataclass
class Fuzzed:
    """The running stack, a client per caller, and what exists on the server (by path
    parameter name), kept whole between requests."""

    stack: Stack
    clients: dict[str, TestClient] = field(default_factory=dict)
    known: dict[str, list[Any]] = field(default_factory=dict)

    def seed(self) -> None:
        admin = self.stack.client
        self.stack.register(admin, ADMIN)
        self.stack.login(admin, ADMIN)
        self.stack.seed_registry(admin)
        self.user_session = self.stack.user_client(USER)
        self.clients = {"anonymous": self.stack.new_client(), "admin_session": admin}
        self.known = {"username": [ADMIN, USER], "model": ["tiny"], "name": ["tiny"], "transcoders": ["tc"]}
        self._new_key()
        self._ensure_graphs()
        self._seed_feature()
        self._seed_jobs()

    def _new_key(self) -> None:
        key = self.user_session.post("/api/auth/keys", json={"name": "fuzz"})
        assert key.status_code == 201, key.text
        self.clients["user_key"] = self.stack.new_client(Authorization=f"Bearer {key.json()['key']}")
        self.known["key_id"] = [key.json()["id"]]

    def _ensure_graphs(self) -> None:
        """Each seeded graph exists, with a comment and a subgraph; what is made again takes the
        old one's place in `known` (the lists keep their lengths: Hypothesis replays examples)."""
        owners = {ADMIN: self.clients["admin_session"], USER: self.clients["user_key"]}
        self.known.setdefault("slug", [""] * 2 * len(GRAPHS))
        self.known.setdefault("comment_id", [0] * len(GRAPHS))
        for i, (slug, owner) in enumerate(GRAPHS.items()):
            client = owners[owner]
            if client.get(f"/api/graphs/{slug}").status_code != 200:
                doc = json.dumps(fake_graph_json("the cat sat", slug))
                r = client.post("/api/graphs/import", content=doc, params={"slug": slug}, headers=JSON)
                assert r.status_code == 201, r.text
                self.known["slug"][2 * i] = slug
            comments = client.get(f"/api/graphs/{slug}/comments").json()
            if self.known["comment_id"][i] not in [c["id"] for c in comments]:
                comment = client.post(f"/api/graphs/{slug}/comments", json={"text": "a comment"})
                assert comment.status_code == 201, comment.text
                self.known["comment_id"][i] = comment.json()["id"]
            if client.get(f"/api/subgraphs/{self.known['slug'][2 * i + 1] or '-'}").status_code != 200:
                subgraph = client.post(f"/api/graphs/{slug}/subgraphs", json={"pinned_ids": []})
                assert subgraph.status_code == 201, subgraph.text
                self.known["slug"][2 * i + 1] = subgraph.json()["slug"]

    def _seed_feature(self) -> None:
        label = self.clients["user_key"].put(f"{FEATURE}/label", json={"text": "cats", "base_version": 0})
        assert label.status_code == 200, label.text
        history = self.clients["user_key"].get(f"{FEATURE}/labels").json()
        self.known.update(layer=[0], index=[7], label_id=[history[0]["id"]])

    def _seed_jobs(self) -> None:
        """Finished jobs (their event streams end at once); the fake tracer runs them."""
        mine = self.stack.submit(self.clients["user_key"], "the cat sat")
        theirs = self.stack.submit(self.clients["admin_session"], "a dog ran")
        self.stack.process_jobs()
        self.known["job_id"] = [mine["id"], theirs["id"]]

    def restore(self, operation: str, status: int) -> None:
        """Undo what `operation` did to the callers or the seeded things, if it did anything."""
        self.clients["anonymous"].cookies.clear()
        if status >= 400 or not (operation in DISRUPTIVE or operation.startswith("DELETE")):
            return
        with self.stack.services.sessions() as session:
            session.execute(update(User).where(User.username == ADMIN).values(is_admin=True))
            session.execute(update(User).where(User.username == USER).values(is_admin=False))
            session.commit()
        if self.clients["admin_session"].get("/api/auth/me").status_code != 200:
            self.stack.login(self.clients["admin_session"], ADMIN)
        if self.clients["user_key"].get("/api/auth/me").status_code != 200:
            self._new_key()
        self._ensure_graphs()


FUZZED = Fuzzed(stack=None)  # type: ignore[arg-type]  # filled by the module fixture
schema = schemathesis.openapi.from_dict(_openapi_document(), config=_config())


@schemathesis.serializer("application/gzip")
def gzip_body(context: Any, value: Any) -> bytes:
    """Uploads may be gzip: the generated bytes, compressed (not a graph once decompressed)."""
    data = value if isinstance(value, bytes) else getattr(value, "data", None)
    return gzip.compress(data if isinstance(data, bytes) else json.dumps(value).encode(), mtime=0)


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
    """Keep the generated values, or put things that exist in their place."""
    known = FUZZED.known
    swaps = {name: st.sampled_from(known[name]) for name in path_parameters or {} if name in known}
    if not swaps:
        return st.just(path_parameters)
    real = st.fixed_dictionaries(swaps).map(lambda found: {**(path_parameters or {}), **found})
    return st.one_of(st.just(path_parameters), real)


@schema.hook
def flatmap_body(context: Any, body: Any) -> Any:
    """Trace requests name a model in their body: keep the generated one, or the seeded one."""
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return st.just(body)
    return st.sampled_from([body, {**body, "model": "tiny"}, {**body, "model": "tiny", "transcoders": "tc"}])


@pytest.fixture(scope="module")
def fuzzed(pg_session_url: str, redis_db: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    empty_tables(pg_session_url)
    settings = fast_settings(
        database_url=pg_session_url,
        redis_url=f"{REDIS_URL}/{redis_db}",
        auth_rate_limit_per_address=0,
        trace_rate_limit_per_user=0,
        trace_rate_limit_per_address=0,
        preview_rate_limit_per_address=0,
        upload_rate_limit_per_user=0,
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GLASSBOX_HOME", str(tmp_path_factory.mktemp("home")))
        FUZZED.stack = Stack(settings)
        FUZZED.stack.app.state.setup_hooks = _offline_setup_hooks()
        try:
            FUZZED.seed()
            yield FUZZED
        finally:
            FUZZED.stack.close()
            FUZZED.known = {}


def _send(client: TestClient, case: Any) -> Any:
    """Send a case with an httpx TestClient (Schemathesis serialises it for `requests`)."""
    kwargs = case.as_transport_kwargs(base_url=BASE_URL)
    body: dict[str, Any] = {}
    if "json" in kwargs:
        body["json"] = kwargs["json"]
    elif kwargs.get("data") is not None:
        data = kwargs["data"]
        body["content"] = data if isinstance(data, bytes | str) else json.dumps(data)
    assert not kwargs.get("files"), "no operation of this API takes multipart bodies"
    headers = {name: str(value) for name, value in (kwargs.get("headers") or {}).items()}
    method, url, params = kwargs["method"], kwargs["url"], kwargs.get("params")
    return client.request(method, url, params=params, headers=headers, **body)


@schema.parametrize()
@pytest.mark.parametrize("caller", CALLERS)
@hypothesis.settings(
    suppress_health_check=[hypothesis.HealthCheck.too_slow, hypothesis.HealthCheck.filter_too_much],
    deadline=None,
)
def test_every_answer_is_documented_and_no_5xx(case: Any, caller: str, fuzzed: Fuzzed) -> None:
    response = _send(fuzzed.clients[caller], case)
    try:
        case.validate_response(response)
    finally:
        fuzzed.restore(case.operation.label, response.status_code)

"""Property tests (Hypothesis) of what users send the server to store: graph JSON (POST
/api/graphs/import and persistence.graphs' decoding and checks), feature dashboards and label
edits, on the real app with Postgres and Redis.

Whatever is sent, the answer is a success whose data reads back as sent, or a 4xx whose message
says what is wrong; never a 5xx, and never a stored value that breaks a later read. The inputs
include what JSON and Unicode allow but storage does not: NaN and infinities (also as overflowing
literals such as 1e400), lone UTF-16 surrogates (escaped and as raw bytes), NUL, huge strings,
deep nesting, and mutations of a valid graph.

Generation is derandomized with no example database, so CI runs the same examples every time.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from _pg_redis import REDIS_URL, empty_tables
from conftest import fast_settings
from gbx_fakes import fake_graph_json
from gbx_stack import Stack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glassbox.errors import GlassboxError
from persistence.errors import ServerError
from persistence.graphs import check_graph, check_upload_fields, compress, decode_upload

MAX_GRAPH_BYTES = 256 * 1024  # small, so huge strings also reach the 413 path
FEATURE = "/api/features/tiny/tc/0/7"
JSON = {"Content-Type": "application/json"}
CLIENT_ERRORS = {409, 413, 422}  # what bad data may get (never 401/403: the callers may write)

PROPERTY = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=100,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)

# ---- strategies ------------------------------------------------------------------------------

# every code point, lone surrogates included (Hypothesis leaves category Cs out by default)
any_text = st.text(st.characters(exclude_categories=()), max_size=30)
# valid Unicode only: what a round trip can bring back
clean_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=30)
huge_text = st.builds(lambda unit, n: unit * n, st.sampled_from(["a", "é", "\U0001f600", "\x00"]),
                      st.integers(50_000, 300_000))
numbers = st.integers() | st.floats() | st.sampled_from([10**30, -(10**30), 1e308, -0.0])
# arrays inside arrays: answers cannot carry what nests too deep
deep_values = st.integers(20, 400).map(lambda n: functools.reduce(lambda inner, _: [inner], range(n), 0))
leaves = st.none() | st.booleans() | numbers | any_text
json_values = st.recursive(
    leaves, lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=25,
)
clean_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | clean_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(clean_text, children, max_size=4),
    max_leaves=25,
)


def encode(value: Any, raw_surrogates: bool) -> bytes:
    """JSON text of `value` as Python writes it (NaN and Infinity included), with lone surrogates
    either escaped (\\udXXX) or as their raw three bytes."""
    if raw_surrogates:
        return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return json.dumps(value).encode()


def overflow_floats(body: bytes) -> bytes:
    """The same JSON with every 1e308 spelled 1e400 (a literal that reads as infinity)."""
    return body.replace(b"1e+308", b"1e400")


@st.composite
def valid_graphs(draw: st.DrawFn) -> dict[str, Any]:
    words = draw(st.lists(st.text("abcdefghijklmnopqrstuvwxyz\u00e9\u4e2d", min_size=1, max_size=8),
                          min_size=1, max_size=6))
    doc = fake_graph_json(" ".join(words), "unused")
    for node in doc["nodes"]:
        node["clerp"] = draw(clean_text)
    for link in doc["links"]:
        link["weight"] = draw(st.floats(-1e6, 1e6, allow_nan=False))
    doc["metadata"]["info"] = draw(st.dictionaries(clean_text, clean_values, max_size=3))
    return doc


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*path, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _paths(child, (*path, i))


junk = json_values | huge_text | deep_values


@st.composite
def mutated_graphs(draw: st.DrawFn) -> Any:
    """A valid graph with 1-3 edits anywhere: a part replaced by anything, removed or repeated, or
    anything added to an object or array (also where the graph check does not look)."""
    doc: Any = draw(valid_graphs())
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(doc))))
        edit = draw(st.sampled_from(["replace", "delete", "repeat", "add"]))
        if edit == "add":
            _add(_at(doc, path), draw(any_text), draw(junk))
        elif not path:
            doc = draw(junk) if edit == "replace" else doc
        elif edit == "replace":
            _at(doc, path[:-1])[path[-1]] = draw(junk)
        elif edit == "delete":
            del _at(doc, path[:-1])[path[-1]]
        elif isinstance(parent := _at(doc, path[:-1]), list):
            parent.insert(path[-1], copy.deepcopy(parent[path[-1]]))
    return doc


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def _add(container: Any, key: str, value: Any) -> None:
    if isinstance(container, dict):
        container[key] = value
    elif isinstance(container, list):
        container.append(value)


# ---- the server ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(pg_session_url: str, redis_db: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """An admin (stack.client) and a registry, no rate limits (every example writes)."""
    empty_tables(pg_session_url)
    settings_ = fast_settings(
        database_url=pg_session_url,
        redis_url=f"{REDIS_URL}/{redis_db}",
        upload_rate_limit_per_user=0,
        max_upload_bytes=MAX_GRAPH_BYTES,
        max_graph_bytes=MAX_GRAPH_BYTES,
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GLASSBOX_HOME", str(tmp_path_factory.mktemp("home")))
        made = Stack(settings_)
        made.register(made.client, "admin")
        made.login(made.client, "admin")
        made.seed_registry(made.client)
        yield made
        made.close()


def assert_refused_with_a_reason(response: Any) -> None:
    assert response.status_code in CLIENT_ERRORS, (response.status_code, response.text[:500])
    message = response.json()["error"]["message"]
    assert isinstance(message, str) and message.strip(), response.text[:500]


def import_graph(stack: Stack, body: bytes) -> Any:
    return stack.client.post("/api/graphs/import", content=body, headers=JSON)


def assert_graph_readable(stack: Stack, slug: str) -> Any:
    """A stored graph answers its metadata and its JSON; returns the JSON."""
    assert stack.client.get(f"/api/graphs/{slug}").status_code == 200
    data = stack.client.get(f"/api/graphs/{slug}/data")
    assert data.status_code == 200, data.text[:500]
    return data.json()


# ---- graph uploads ---------------------------------------------------------------------------


@PROPERTY
@given(doc=json_values | st.dictionaries(any_text, json_values, max_size=6), raw=st.booleans())
def test_any_json_document_is_stored_or_refused_with_a_reason(stack: Stack, doc: Any, raw: bool) -> None:
    response = import_graph(stack, encode(doc, raw))
    if response.status_code == 201:
        assert_graph_readable(stack, response.json()["slug"])
    else:
        assert_refused_with_a_reason(response)


@settings(PROPERTY, max_examples=200)
@given(doc=mutated_graphs(), raw=st.booleans(), overflow=st.booleans())
def test_a_mutated_graph_is_stored_or_refused_with_a_reason(
    stack: Stack, doc: Any, raw: bool, overflow: bool
) -> None:
    body = encode(doc, raw)
    response = import_graph(stack, overflow_floats(body) if overflow else body)
    if response.status_code == 201:
        stored = assert_graph_readable(stack, response.json()["slug"])
        assert stored["nodes"] and stored["links"] is not None
    else:
        assert_refused_with_a_reason(response)


@settings(PROPERTY, max_examples=30)
@given(doc=valid_graphs(), gzipped=st.booleans())
def test_a_valid_graph_round_trips(stack: Stack, doc: dict[str, Any], gzipped: bool) -> None:
    body = json.dumps(doc).encode()
    if gzipped:
        body, _ = compress(doc)
    response = import_graph(stack, body)
    assert response.status_code == 201, response.text[:500]
    slug = response.json()["slug"]
    assert response.json()["prompt"] == doc["metadata"]["prompt"]
    expected = copy.deepcopy(doc)
    expected["metadata"]["slug"] = slug
    assert assert_graph_readable(stack, slug) == expected


@settings(PROPERTY, max_examples=1000)
@given(raw=st.binary(max_size=200) | json_values.map(lambda v: encode(v, True)) | mutated_graphs().map(
    lambda v: encode(v, False)
))
def test_the_upload_checks_raise_only_client_errors(raw: bytes) -> None:
    """persistence.graphs on any bytes: a document, or a GlassboxError/ServerError (a 4xx)."""
    try:
        doc = decode_upload(raw, max_bytes=MAX_GRAPH_BYTES)
        check_upload_fields(doc)
        check_graph(doc)
        compress(doc)
    except ServerError as exc:
        assert 400 <= exc.status < 500 and exc.message
    except GlassboxError as exc:
        assert str(exc)


def _graph_text(edit: Any = None, *, replace: tuple[str, str] = ("", "")) -> bytes:
    doc = fake_graph_json("the cat sat", "unused")
    if edit is not None:
        edit(doc)
    return json.dumps(doc).replace(*replace, 1).encode()


def _with_info(value: str) -> bytes:
    """A valid graph whose metadata.info holds `value` (JSON text) under "a"."""
    return _graph_text(replace=('"prompt":', f'"info": {{"a": {value}}}, "prompt":'))


# Uploads that once made the server answer 500 (found by the properties above), kept as examples.
HARD_UPLOADS = {
    "a link source that is an array": _graph_text(lambda d: d["links"][0].update(source=["E_0_0"])),
    "a link target that is an object": _graph_text(lambda d: d["links"][0].update(target={"a": 1})),
    "an integer of 5000 digits": _graph_text(replace=('"ctx_idx": 0', '"ctx_idx": ' + "9" * 5000)),
    "1e400 where the graph check does not look": _with_info("1e400"),
    "metadata.info nested 600 deep": _with_info("[" * 600 + "]" * 600),
}


@pytest.mark.parametrize("body", HARD_UPLOADS.values(), ids=HARD_UPLOADS.keys())
def test_uploads_that_once_failed_are_refused_with_a_reason(stack: Stack, body: bytes) -> None:
    assert_refused_with_a_reason(import_graph(stack, body))


# ---- dashboards and labels -------------------------------------------------------------------


def assert_feature_readable(stack: Stack) -> dict[str, Any]:
    feature = stack.client.get(FEATURE)
    assert feature.status_code == 200, feature.text[:500]
    batch = stack.client.post("/api/features/tiny/tc/batch", json={"features": [{"layer": 0, "index": 7}]})
    assert batch.status_code == 200, batch.text[:500]
    assert stack.client.get(f"{FEATURE}/labels").status_code == 200
    return feature.json()


@PROPERTY
@given(
    dashboard=st.dictionaries(any_text, junk, max_size=5),
    auto_label=st.none() | any_text | huge_text,
    raw=st.booleans(),
    overflow=st.booleans(),
)
def test_a_dashboard_is_stored_as_sent_or_refused(
    stack: Stack, dashboard: dict[str, Any], auto_label: str | None, raw: bool, overflow: bool
) -> None:
    body = encode({"dashboard": dashboard, "auto_label": auto_label}, raw)
    response = stack.client.put(f"{FEATURE}/dashboard", content=overflow_floats(body) if overflow else body,
                                headers=JSON)
    if response.status_code == 200:
        stored = assert_feature_readable(stack)
        assert stored["dashboard"] == json.loads(json.dumps(dashboard))
        if auto_label is not None:
            assert stored["auto_label"] == auto_label
    else:
        assert_refused_with_a_reason(response)
        assert_feature_readable(stack)


# Bodies that once made the server answer 4xx without a reason, or store what it could not send
# back (then every read of the feature was a 500).
HARD_DASHBOARDS = {
    "nested 300 deep": b'{"dashboard": {"a": ' + b"[" * 300 + b"]" * 300 + b"}}",
    "nested past the recursion limit": b'{"dashboard": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "an integer of 5000 digits": b'{"dashboard": {"a": ' + b"9" * 5000 + b"}}",
    "1e400": b'{"dashboard": {"a": 1e400}}',
    "bytes that are not UTF-8": b'{"dashboard": {"a": "\xff"}}',
}


@pytest.mark.parametrize("body", HARD_DASHBOARDS.values(), ids=HARD_DASHBOARDS.keys())
def test_dashboards_that_once_failed_are_refused_with_a_reason(stack: Stack, body: bytes) -> None:
    assert_refused_with_a_reason(stack.client.put(f"{FEATURE}/dashboard", content=body, headers=JSON))
    assert_feature_readable(stack)


@PROPERTY
@given(text=any_text | huge_text | json_values, raw=st.booleans())
def test_a_label_edit_is_stored_or_refused(stack: Stack, text: Any, raw: bool) -> None:
    version = assert_feature_readable(stack)["label_version"]
    body = encode({"text": text, "base_version": version}, raw)
    response = stack.client.put(f"{FEATURE}/label", content=body, headers=JSON)
    if response.status_code == 200:
        stored = assert_feature_readable(stack)
        assert stored["label"] == text.strip() and stored["label_version"] == version + 1
    else:
        assert_refused_with_a_reason(response)
        assert assert_feature_readable(stack)["label_version"] == version

"""Every kind of bad input gets a 4xx with a clear JSON message, never a 500."""

from __future__ import annotations

import pytest

JOB = "0123456789abcdef0123456789abcdef"
LONG_PROMPT = " ".join(["word"] * 20)  # 21 tokens with BOS; the test limit is 16

CASES = [
    # (method, path, json body or raw bytes, expected status, words in the message)
    ("POST", "/api/traces", {"model": "tiny", "prompt": ""}, 422, "prompt is empty"),
    ("POST", "/api/traces", {"model": "tiny", "prompt": "  \n\t "}, 422, "prompt is empty"),
    ("POST", "/api/traces", {"model": "tiny", "prompt": LONG_PROMPT}, 422, "21 tokens long; the limit is 16"),
    (
        "POST",
        "/api/traces",
        {"model": "tiny", "prompt": "x" * 5000},
        422,
        "characters long; the limit is 4000",
    ),
    ("POST", "/api/traces", {"model": "nope", "prompt": "hi"}, 422, "unknown model 'nope' (known: tiny)"),
    (
        "POST",
        "/api/traces",
        {"model": "tiny", "transcoders": "zz", "prompt": "hi"},
        422,
        "no transcoder set 'zz' (known: tc)",
    ),
    (
        "POST",
        "/api/traces",
        {"model": "tiny", "prompt": "hi", "params": {"node_threshold": 2}},
        422,
        "params.node_threshold",
    ),
    (
        "POST",
        "/api/traces",
        {"model": "tiny", "prompt": "hi", "params": {"max_n_logits": 0}},
        422,
        "params.max_n_logits",
    ),
    (
        "POST",
        "/api/traces",
        {"model": "tiny", "prompt": "hi", "params": {"max_feature_nodes": 10**9}},
        422,
        "max_feature_nodes may be at most 20000",
    ),
    ("POST", "/api/traces", {"model": "tiny", "prompt": "hi", "params": {"bogus": 1}}, 422, "params.bogus"),
    ("POST", "/api/traces", {"model": "tiny", "prompt": "hi", "colour": "red"}, 422, "body.colour"),
    ("POST", "/api/traces", {"model": "tiny", "prompt": "hi", "slug": "Not A Slug!"}, 422, "body.slug"),
    ("POST", "/api/traces", {"model": "tiny", "prompt": "nul\x00byte"}, 422, "NUL"),
    ("POST", "/api/traces", {"model": "tiny", "prompt": 5}, 422, "body.prompt"),
    (
        "POST",
        "/api/traces",
        {"model": "tiny", "prompt": "hi", "visibility": "secret"},
        422,
        "body.visibility",
    ),
    ("POST", "/api/traces", {"model": "../etc", "prompt": "hi"}, 422, "body.model"),
    ("POST", "/api/traces", b"{not json", 422, "not valid JSON"),
    ("POST", "/api/traces", b"", 422, "body"),
    ("GET", "/api/jobs/not-a-job-id", None, 422, "job_id"),
    ("GET", f"/api/jobs/{JOB}", None, 404, f"job '{JOB}' not found"),
    ("POST", f"/api/jobs/{JOB}/retry", None, 404, "not found"),
    ("GET", f"/api/jobs/{JOB}/events", None, 404, "not found"),
    ("GET", "/api/jobs?status=exploded", None, 422, "status"),
    ("GET", "/api/graphs?limit=0", None, 422, "limit"),
    ("GET", "/api/graphs?limit=99999999999999999999", None, 422, "limit"),
    ("GET", "/api/graphs?offset=-1", None, 422, "offset"),
    ("GET", "/api/graphs?q=" + "a" * 600, None, 422, "q"),
    ("GET", "/api/graphs/no-such-graph", None, 404, "graph 'no-such-graph' not found"),
    ("GET", "/api/graphs/no-such-graph/data", None, 404, "not found"),
    ("GET", "/api/graphs/" + "x" * 300, None, 422, "slug"),
    ("POST", "/api/graphs/no-such-graph/comments", {"text": "hi"}, 404, "not found"),
    ("GET", "/api/subgraphs/none-here", None, 404, "not found"),
    ("DELETE", "/api/comments/0", None, 422, "comment_id"),
    ("DELETE", "/api/comments/77", None, 404, "comment 77 not found"),
    ("DELETE", "/api/auth/keys/99999999999", None, 422, "key_id"),
    ("POST", "/api/models/tiny/tokenize", {"prompt": ""}, 422, "prompt is empty"),
    ("POST", "/api/models/tiny/tokenize", {"prompt": "hi", "top_k": 500}, 422, "top_k"),
    ("POST", "/api/models/nope/tokenize", {"prompt": "hi"}, 404, "unknown model"),
    ("GET", "/api/models/nope", None, 404, "unknown model 'nope'"),
    ("POST", "/api/models", {"name": "tiny", "source": "again"}, 409, "exists"),
    ("POST", "/api/models", {"name": "has space", "source": "x"}, 422, "body.name"),
    ("POST", "/api/models/tiny/transcoder-sets", {"name": "tc", "source": "again"}, 409, "already has"),
    ("PUT", "/api/features/tiny/tc/0/1/label", {"text": "   ", "base_version": 0}, 422, "label is empty"),
    ("PUT", "/api/features/tiny/tc/0/1/label", {"text": "x", "base_version": -1}, 422, "base_version"),
    ("PUT", "/api/features/tiny/tc/0/1/label", {"text": "x", "base_version": 5}, 409, "changed since"),
    ("PUT", "/api/users/nobody/admin?is_admin=true", None, 404, "user 'nobody' not found"),
    ("PUT", "/api/users/admin/admin?is_admin=maybe", None, 422, "is_admin"),
    ("GET", "/api/nothing-here", None, 404, "nothing at /api/nothing-here"),
    ("DELETE", "/api/models", None, 405, "Method Not Allowed"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"), CASES, ids=[f"{c[0]} {c[1][:50]}" for c in CASES]
)
def test_bad_input_gets_4xx_with_message(shared_pg_stack, method, path, body, status, words):
    kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
    if isinstance(body, bytes):
        kwargs["headers"] = {"Content-Type": "application/json"}
    r = shared_pg_stack.client.request(method, path, **kwargs)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert words in r.json()["error"]["message"]


def test_taken_slug_is_a_conflict(pg_stack):
    stack = pg_stack
    stack.submit(stack.client, "first", slug="wanted")
    r = stack.client.post("/api/traces", json={"model": "tiny", "prompt": "second", "slug": "wanted"})
    assert r.status_code == 409 and "slug 'wanted' is taken" in r.json()["error"]["message"]


def test_browsers_get_an_error_page(pg_stack):
    r = pg_stack.new_client().get("/graph/missing", headers={"Accept": "text/html"})
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "graph &#39;missing&#39; not found" in r.text or "graph 'missing' not found" in r.text

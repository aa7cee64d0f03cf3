"""Features: dashboards, batch reads, labels with history and version check, votes, comments."""

from __future__ import annotations

import threading

FEATURE = "/api/features/tiny/tc/2/123"


def test_dashboard_upload_single_and_batch_reads(pg_stack):
    stack = pg_stack
    anon = stack.new_client()
    empty = anon.get(FEATURE).json()
    assert empty == {
        "model": "tiny",
        "transcoders": "tc",
        "layer": 2,
        "index": 123,
        "auto_label": None,
        "label": None,
        "label_version": 0,
        "activation_frequency": None,
        "dashboard": None,
        "explanation": None,
    }

    dashboard = {"examples": [{"tokens": ["a", "b"], "acts": [0.0, 2.5]}], "top_logits": [" Austin"]}
    r = stack.client.put(FEATURE + "/dashboard", json={"dashboard": dashboard, "auto_label": "Texas cities"})
    assert r.status_code == 200, r.text
    assert stack.user_client("mallory").put(FEATURE + "/dashboard", json={"dashboard": {}}).status_code == 403

    got = anon.get(FEATURE).json()
    assert got["dashboard"] == dashboard and got["auto_label"] == "Texas cities"
    assert anon.get(FEATURE, params={"dashboard": False}).json()["dashboard"] is None

    body = {"features": [{"layer": 0, "index": 5}, {"layer": 2, "index": 123}]}
    batch = anon.post("/api/features/tiny/tc/batch", json=body).json()
    assert [(f["layer"], f["index"]) for f in batch] == [(0, 5), (2, 123)]
    assert batch[0]["dashboard"] is None and batch[1]["dashboard"] == dashboard
    body["include_dashboards"] = False
    assert anon.post("/api/features/tiny/tc/batch", json=body).json()[1]["dashboard"] is None


def test_batch_reads_carry_the_activation_frequency_without_dashboards(any_stack):
    """The viewer's density filter reads activation_frequency off a batch of features without
    their dashboards: from the first bytes of the builder's dashboards, and from the whole of one
    that keeps it further on (feature-details' frac_nonzero after its examples)."""
    stack = any_stack()
    stack.register(stack.client, "admin")
    stack.login(stack.client, "admin")
    stack.seed_registry(stack.client)
    examples = [
        {"tokens": [f"t{i}-{j}" for j in range(64)], "tokens_acts_list": [0.5] * 64} for i in range(300)
    ]
    builder = {
        "index": 5,
        "layer": 1,
        "feature": 5,
        "auto_label": '"the"',
        "activation_frequency": 0.0123,
        "examples_quantiles": [{"quantile_name": "Top activations", "examples": examples}],
    }
    late = {"examples_quantiles": [{"quantile_name": "Top", "examples": examples}], "frac_nonzero": 0.25}
    for index, dashboard in ((5, builder), (6, late), (7, {"top_logits": [" a"]})):
        r = stack.client.put(f"/api/features/tiny/tc/1/{index}/dashboard", json={"dashboard": dashboard})
        assert r.status_code == 200, r.text
    anon = stack.new_client()
    body = {"features": [{"layer": 1, "index": i} for i in (5, 6, 7, 8)], "include_dashboards": False}
    batch = anon.post("/api/features/tiny/tc/batch", json=body).json()
    assert [f["activation_frequency"] for f in batch] == [0.0123, 0.25, None, None]
    assert all(f["dashboard"] is None for f in batch)
    body["include_dashboards"] = True
    batch = anon.post("/api/features/tiny/tc/batch", json=body).json()
    assert [f["activation_frequency"] for f in batch] == [0.0123, 0.25, None, None]
    single = anon.get("/api/features/tiny/tc/1/5", params={"dashboard": False}).json()
    assert single["activation_frequency"] == 0.0123 and single["dashboard"] is None
    assert anon.get("/api/features/tiny/tc/1/6").json()["activation_frequency"] == 0.25


def test_label_edits_keep_history_and_refuse_stale_versions(pg_stack):
    stack = pg_stack
    r = stack.client.put(FEATURE + "/label", json={"text": "Texas", "base_version": 0})
    assert r.status_code == 200 and r.json()["label"] == "Texas" and r.json()["label_version"] == 1
    bob = stack.user_client("bob")
    r = bob.put(FEATURE + "/label", json={"text": "US states", "base_version": 1})
    assert r.json()["label_version"] == 2

    stale = stack.client.put(FEATURE + "/label", json={"text": "Texas cities", "base_version": 1})
    assert stale.status_code == 409
    error = stale.json()["error"]
    assert "changed since version 1" in error["message"]
    assert error["details"] == {"label_version": 2, "label": "US states"}

    history = stack.new_client().get(FEATURE + "/labels").json()
    assert [(h["version"], h["text"], h["author"]) for h in history] == [
        (2, "US states", "bob"),
        (1, "Texas", "admin"),
    ]

    r = stack.client.post(FEATURE + "/label/revert", json={"version": 1, "base_version": 2})
    assert r.json()["label"] == "Texas" and r.json()["label_version"] == 3
    latest = stack.client.get(FEATURE + "/labels").json()[0]
    assert latest["reverted_from"] == 1 and latest["author"] == "admin"
    assert (
        stack.client.post(FEATURE + "/label/revert", json={"version": 9, "base_version": 3}).status_code
        == 404
    )
    assert (
        stack.new_client().put(FEATURE + "/label", json={"text": "x", "base_version": 3}).status_code == 401
    )


def test_concurrent_label_edits_one_wins_the_other_gets_409(pg_stack):
    stack = pg_stack
    stack.client.put(FEATURE + "/label", json={"text": "start", "base_version": 0})
    editors = [stack.user_client(f"editor{i}") for i in range(6)]
    barrier = threading.Barrier(len(editors))
    results: dict[int, int] = {}

    def edit(i):
        barrier.wait()
        r = editors[i].put(FEATURE + "/label", json={"text": f"edit {i}", "base_version": 1})
        results[i] = r.status_code

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(len(editors))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == [200] + [409] * (len(editors) - 1)
    winner = next(i for i, code in results.items() if code == 200)
    feature = stack.client.get(FEATURE).json()
    assert feature["label"] == f"edit {winner}" and feature["label_version"] == 2
    assert [h["text"] for h in stack.client.get(FEATURE + "/labels").json()] == [f"edit {winner}", "start"]


def test_votes(pg_stack):
    stack = pg_stack
    stack.client.put(FEATURE + "/label", json={"text": "Texas", "base_version": 0})
    label_id = stack.client.get(FEATURE + "/labels").json()[0]["id"]
    voters = [stack.user_client(name) for name in ("voter1", "voter2", "voter3")]
    for voter, value in zip(voters, (1, 1, -1), strict=True):
        assert voter.post(f"/api/labels/{label_id}/vote", json={"value": value}).status_code == 204
    assert voters[0].post(f"/api/labels/{label_id}/vote", json={"value": 1}).status_code == 204  # idempotent
    entry = voters[2].get(FEATURE + "/labels").json()[0]
    assert entry["score"] == 1 and entry["my_vote"] == -1
    voters[2].post(f"/api/labels/{label_id}/vote", json={"value": 0})
    assert voters[2].get(FEATURE + "/labels").json()[0] | {} == entry | {"score": 2, "my_vote": 0}
    assert voters[0].post(f"/api/labels/{label_id}/vote", json={"value": 2}).status_code == 422
    assert voters[0].post("/api/labels/999999/vote", json={"value": 1}).status_code == 404


def test_feature_comments(pg_stack):
    stack = pg_stack
    anon = stack.new_client()
    assert anon.get(FEATURE + "/comments").json() == []
    r = stack.client.post(FEATURE + "/comments", json={"text": "fires on Austin"})
    assert r.status_code == 201
    assert [c["text"] for c in anon.get(FEATURE + "/comments").json()] == ["fires on Austin"]


def test_feature_addresses_are_checked(pg_stack):
    anon = pg_stack.new_client()
    r = anon.get("/api/features/tiny/tc/4/1")
    assert r.status_code == 422 and "layers 0-3" in r.json()["error"]["message"]
    r = anon.get("/api/features/nope/tc/0/1")
    assert r.status_code == 404 and "unknown model 'nope'" in r.json()["error"]["message"]
    r = anon.get("/api/features/tiny/nope/0/1")
    assert r.status_code == 404 and "no transcoder set 'nope'" in r.json()["error"]["message"]
    assert anon.get("/api/features/tiny/tc/-1/1").status_code == 422
    assert anon.get("/api/features/tiny/tc/0/99999999999999999999").status_code == 422
    r = anon.post("/api/features/tiny/tc/batch", json={"features": []})
    assert r.status_code == 422
    r = anon.post("/api/features/tiny/tc/batch", json={"features": [{"layer": 9, "index": 0}]})
    assert r.status_code == 422


def test_a_dashboard_cut_short_never_gives_a_wrong_frequency():
    """Whatever the first bytes of the gzip hold, the head reader settles on the right value or
    asks for the whole dashboard (a number at the very end may be cut: 0.0123 read as 0.01)."""
    import gzip
    import json
    import zlib

    from persistence.features import _head_frequency

    doc = {"index": 5, "auto_label": 'word after "the"', "activation_frequency": 0.0123456, "hist": [1] * 50}
    raw = gzip.compress(json.dumps(doc, separators=(",", ":")).encode(), mtime=0)
    settled_at = None
    for cut in range(1, len(raw) + 1):
        inflater = zlib.decompressobj(wbits=31)
        text = inflater.decompress(raw[:cut]).decode("utf-8", errors="replace")
        settled, value = _head_frequency(text, complete=inflater.eof)
        assert value == (0.0123456 if settled else None), cut
        if settled and settled_at is None:
            settled_at = cut
    assert settled_at is not None and settled_at < len(raw)
    assert _head_frequency('{"a": 1, "frac_nonzero": 0.5}', complete=True) == (True, 0.5)
    assert _head_frequency('{"a": 1}', complete=True) == (True, None)
    assert _head_frequency("[1, 2]", complete=True) == (True, None)

"""The compare page's difference view and its token alignment for one prompt on two models,
through the real engine: tiny random models traced by an RQ worker, compared by the server.

(The side-by-side view is tested in test_server_interventions.py.)
"""

from __future__ import annotations

import re

import pytest
from _tiny_models import make_chunked_model_dir

from glassbox.testing import make_random_transcoders_dir, make_tiny_model_dir

PROMPT = "The capital of Texas is"


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    """Two tiny models: word-level llama (`tiny`) and a gemma3 whose tokenizer cuts words into
    pieces of three characters (`chunky`), each with random transcoders."""
    root = tmp_path_factory.mktemp("tiny")
    word = make_tiny_model_dir(root / "model", "llama")
    chunky = make_chunked_model_dir(root / "chunky", "gemma3")
    return {
        "tiny": (word, make_random_transcoders_dir(root / "tc", word)),
        "chunky": (chunky, make_random_transcoders_dir(root / "tc-chunky", chunky, seed=3)),
    }


@pytest.fixture
def stack(tiny_dirs, pg_url, redis_url, make_stack):
    s = make_stack(pg_url, redis_url, real_engine=True)
    s.register(s.client, "admin")
    s.login(s.client, "admin")
    model_dir, tc_dir = tiny_dirs["tiny"]
    s.seed_registry(s.client, n_layers=2, model=str(model_dir), tc=str(tc_dir))
    model_dir, tc_dir = tiny_dirs["chunky"]
    r = s.client.post("/api/models", json={"name": "chunky", "source": str(model_dir)})
    assert r.status_code == 201, r.text
    body = {"name": "tc", "source": str(tc_dir), "is_default": True, "n_layers": 2}
    assert s.client.post("/api/models/chunky/transcoder-sets", json=body).status_code == 201
    return s


def _trace(stack, prompt: str, slug: str, model: str = "tiny") -> dict:
    body = {"model": model, "prompt": prompt, "slug": slug, "params": {"max_n_logits": 3}}
    r = stack.client.post("/api/traces", json=body)
    assert r.status_code == 202, r.text
    stack.process_jobs()
    done = stack.job(stack.client, r.json()["id"])
    assert done["status"] == "done", done
    return stack.client.get(f"/api/graphs/{slug}/data").json()


def _features(doc: dict) -> dict[tuple[int, int], dict]:
    """(layer, feature) -> positions and largest activation, from the graph JSON's feature nodes
    (ids are layer_feature_pos)."""
    out: dict[tuple[int, int], dict] = {}
    for n in doc["nodes"]:
        if n["feature_type"] == "cross layer transcoder":
            layer, feature, pos = (int(x) for x in n["node_id"].split("_"))
            f = out.setdefault((layer, feature), {"positions": set(), "max_activation": float("-inf")})
            f["positions"].add(pos)
            f["max_activation"] = max(f["max_activation"], n["activation"])
    return out


def _logits(doc: dict) -> dict[str, float]:
    return {n["clerp"]: n["token_prob"] for n in doc["nodes"] if n["feature_type"] == "logit"}


def _compare(stack, a: str, b: str, **params) -> dict:
    r = stack.client.get("/compare", params={"a": a, "b": b, "format": "json", **params})
    assert r.status_code == 200, r.text
    return r.json()


def test_difference_view_lists_only_what_differs(stack):
    doc_a, doc_b = _trace(stack, PROMPT, "diff-a"), _trace(stack, "The capital of France is", "diff-b")
    fa, fb = _features(doc_a), _features(doc_b)
    data = _compare(stack, "diff-a", "diff-b", view="diff")
    assert data["view"] == "diff"
    assert data == {**_compare(stack, "diff-a", "diff-b"), "view": "diff"}  # one JSON for both views
    c, d = data["comparison"], data["difference"]
    assert c["comparable"] is True and c["method"] == "influence" and c["alignment"] is None

    key = lambda item: (item["layer"], item["feature"])  # noqa: E731
    assert {key(x) for x in d["only_a"]} == fa.keys() - fb.keys() and c["n_only_a"] == len(d["only_a"])
    assert {key(x) for x in d["only_b"]} == fb.keys() - fa.keys() and c["n_only_b"] == len(d["only_b"])
    assert {key(x) for x in d["changed"]} == fa.keys() & fb.keys() == {key(x) for x in c["shared"]}
    assert d["n_changed"] == len(d["changed"]) > 0, "the two prompts share words, so some features"
    for x in d["only_a"]:
        assert x["b"] is None and x["a"]["positions"] == sorted(fa[key(x)]["positions"])
        assert x["a"]["max_activation"] == pytest.approx(fa[key(x)]["max_activation"], rel=1e-5)
    changes = [abs(x["change"]) for x in d["changed"]]
    assert changes == sorted(changes, reverse=True) and max(changes) > 0
    for x in d["changed"]:
        assert x["change"] == pytest.approx(x["share_b"] - x["share_a"])
        assert x["activation_a"] == pytest.approx(fa[key(x)]["max_activation"], rel=1e-5)
        assert x["activation_b"] == pytest.approx(fb[key(x)]["max_activation"], rel=1e-5)
        assert x["activation_change"] == pytest.approx(x["activation_b"] - x["activation_a"])

    logits_a, logits_b = _logits(doc_a), _logits(doc_b)  # each graph's logit nodes
    assert sorted(r["prob_a"] for r in c["outputs"] if r["prob_a"] is not None) == pytest.approx(
        sorted(logits_a.values()))
    assert sorted(r["prob_b"] for r in c["outputs"] if r["prob_b"] is not None) == pytest.approx(
        sorted(logits_b.values()))
    for row in c["outputs"]:
        both = row["prob_a"] is not None and row["prob_b"] is not None
        assert row["change"] == (pytest.approx(row["prob_b"] - row["prob_a"]) if both else None)

    page = stack.client.get("/compare", params={"a": "diff-a", "b": "diff-b", "view": "diff"}).text
    current = '&amp;view={}" aria-current="page"'
    assert "What differs" in page and current.format("diff") in page
    changed_table = page.split('id="changed"')[1].split("</table>")[0]
    assert changed_table.count("<tr data-feature=") == min(d["n_changed"], 200)
    only_a = page.split('id="only-a"')[1].split("</table>")[0]
    assert only_a.count("<tr data-feature=") == min(c["n_only_a"], 200)
    assert 'class="gb-shared"' not in page  # the side view's highlighting is not in this view
    side = stack.client.get("/compare", params={"a": "diff-a", "b": "diff-b"}).text
    assert "What differs" not in side and current.format("side") in side
    bad = stack.client.get("/compare", params={"a": "diff-a", "b": "diff-b", "view": "sideways"})
    assert bad.status_code == 422

    same = _compare(stack, "diff-a", "diff-a", view="diff")["difference"]
    assert same["only_a"] == same["only_b"] == [] and all(x["change"] == 0 for x in same["changed"])


def test_one_prompt_on_two_models_aligns_the_tokens(stack):
    doc_a = _trace(stack, PROMPT, "word-texas")
    doc_b = _trace(stack, PROMPT, "chunk-texas", model="chunky")
    tokens_a, tokens_b = doc_a["metadata"]["prompt_tokens"], doc_b["metadata"]["prompt_tokens"]
    assert tokens_a == ["<bos>", "The", "capital", "of", "Texas", "is"]
    assert tokens_b == ["<bos>", "The", "cap", "ita", "l", "of", "Tex", "as", "is"]

    data = _compare(stack, "word-texas", "chunk-texas", view="diff")
    c = data["comparison"]
    assert c["comparable"] is False and c["n_shared"] == 0 and c["weighted_overlap"] == 0
    assert c["n_only_a"] == len(_features(doc_a)) and c["n_only_b"] == len(_features(doc_b))
    al = c["alignment"]
    assert al["tokens_a"] == tokens_a and al["tokens_b"] == tokens_b and al["one_to_one"] is False
    groups = [(g["a"], g["b"], g["text"]) for g in al["groups"]]  # a word's span takes the space before it
    assert groups == [([0], [0], ""), ([1], [1], "The"), ([2], [2, 3, 4], " capital"), ([3], [5], " of"),
                      ([4], [6, 7], " Texas"), ([5], [8], " is")]
    assert [list(p) for p in al["pairs"]] == [[i, j] for a, b, _ in groups for i in a for j in b]
    # shares by position add up to the features' shares: the same influence, counted two ways
    for side, only in (("share_a", c["only_a"]), ("share_b", c["only_b"])):
        assert sum(g[side] for g in al["groups"]) == pytest.approx(sum(x[side] for x in only))
        assert all(g[side] >= 0 for g in al["groups"])
    assert al["groups"][0]["share_a"] == al["groups"][0]["share_b"] == 0  # nothing at BOS
    for g in al["groups"]:
        assert g["change"] == pytest.approx(g["share_b"] - g["share_a"])

    for view in ("side", "diff"):
        page = stack.client.get("/compare", params={"a": "word-texas", "b": "chunk-texas", "view": view}).text
        assert "Tokens aligned" in page and "feature indices do not correspond" in page
        assert 'data-pos-a="4" data-pos-b="6,7"' in page and 'data-pos-a="2" data-pos-b="2,3,4"' in page
        row = page.split('data-pos-a="4" data-pos-b="6,7"')[1].split("</tr>")[0]
        assert re.findall(r"</span>([^<]*)</span>", row) == ["Texas", "Tex", "as"]
        assert 'class="gb-shared"' not in page and ">In both<" not in page

    # two models, two prompts: nothing to align, and the page says why
    _trace(stack, "The capital of France is", "chunk-france", model="chunky")
    other = _compare(stack, "word-texas", "chunk-france")["comparison"]
    assert other["comparable"] is False and other["alignment"] is None
    page = stack.client.get("/compare", params={"a": "word-texas", "b": "chunk-france"}).text
    assert "Tokens aligned" not in page and "only when both graphs trace the same prompt" in page

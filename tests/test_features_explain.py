"""LLM explanations (glassbox.features.explain) against a fake OpenAI-compatible endpoint served
over real HTTP on 127.0.0.1: the client's errors and retries, explaining, scoring, and
`glassbox features explain` on a small store written by hand."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest
from _fake_explainer import FakeExplainer
from typer.testing import CliRunner

from glassbox.cli import app
from glassbox.features import codec
from glassbox.features.explain import (
    MAX_WORDS,
    PROMPT_VERSION,
    ChatClient,
    Context,
    ExplainerAuthError,
    ExplainerError,
    ExplainerRateLimited,
    ExplainerResponseError,
    ExplainerUnavailable,
    FeatureEvidence,
    clean_explanation,
    evidence_from_dashboard,
    explain,
    explain_store_feature,
    parse_predictions,
    random_contexts,
    render_context,
    split_contexts,
)
from glassbox.features.store import (
    FORMAT,
    TOKENS,
    VERSION,
    FeatureStore,
    StoreWriter,
    write_manifest,
    write_vocab,
)


@pytest.fixture
def fake():
    with FakeExplainer() as server:
        yield server


def _client(fake: FakeExplainer, **kwargs) -> tuple[ChatClient, list[float]]:
    slept: list[float] = []
    return ChatClient(fake.url, model=kwargs.pop("model", "m-1"), sleep=slept.append, **kwargs), slept


def _ctx(text: str, peak_word: str | None = None) -> Context:
    tokens = tuple(f" {w}" for w in text.split())
    peak = None if peak_word is None else tokens.index(f" {peak_word}")
    return Context(tokens, peak, 1.0 if peak_word else 0.0)


CAT_CONTEXTS = [_ctx(f"story {i} the cat sat on mat", "cat") for i in range(12)]
NEGATIVES = [_ctx("a dog ran home"), _ctx("the cat door is open"), _ctx("rain fell all day"),
             _ctx("a bird sang"), _ctx("cattle graze here"), _ctx("numbers go up")]


# ---- explaining and scoring -------------------------------------------------------------------


def test_explanation_and_score_match_a_direct_computation(fake):
    client, _ = _client(fake)
    evidence = FeatureEvidence(tuple(CAT_CONTEXTS), (" meow", " purr"))
    result = explain(client, evidence, NEGATIVES, n_explain=6, n_holdout=5, seed=3)

    assert result.text == "fires on cat"
    assert result.prompt_version == PROMPT_VERSION and result.explainer_model == "m-1"
    assert result.created_at.tzinfo is not None
    # the direct computation: the fake says yes exactly where "cat" is in the excerpt
    shown, held = split_contexts(CAT_CONTEXTS, n_explain=6, n_holdout=5, seed=3)
    n = min(len(held), len(NEGATIVES))
    judged = [(c, True) for c in held[:n]] + [(c, False) for c in NEGATIVES[:n]]
    expected = sum(("cat" in render_context(c)) == truth for c, truth in judged) / len(judged)
    assert result.n_scored == 2 * n == 10
    assert result.score == pytest.approx(expected) == pytest.approx(0.8)  # "cat door", "cattle": wrong

    explain_prompt = fake.requests[0]["body"]["messages"][1]["content"]
    assert explain_prompt.count("<< cat>>") == len(shown) == 6  # held-out contexts are not shown
    assert '" meow"' in explain_prompt
    for context in held:
        assert render_context(context) not in explain_prompt
    score_prompts = [r["body"]["messages"][1]["content"] for r in fake.requests[1:]]
    assert all("<< " not in p and 'described as: "fires on cat"' in p for p in score_prompts)
    assert fake.requests[0]["body"]["model"] == "m-1" and fake.requests[0]["body"]["temperature"] == 0


def test_the_score_follows_the_predictions(fake):
    """A feature whose held-out contexts lack the explained token scores lower: the score is
    computed, not constant."""
    client, _ = _client(fake)
    odd = [_ctx("the cat sat", "cat") for _ in range(4)] + [_ctx("a dog barked", "dog") for _ in range(4)]
    evidence = FeatureEvidence(tuple(odd), ())
    result = explain(client, evidence, NEGATIVES[:1] + NEGATIVES[2:4], n_explain=4, n_holdout=4, seed=0)
    _, held = split_contexts(odd, n_explain=4, n_holdout=4, seed=0)
    negatives = NEGATIVES[:1] + NEGATIVES[2:4]
    n = min(len(held), len(negatives))
    token = result.text.removeprefix("fires on ")
    right = sum(token in render_context(c) for c in held[:n]) + sum(token not in render_context(c)
                                                                   for c in negatives[:n])
    assert result.n_scored == 2 * n == 6
    assert result.score == pytest.approx(right / (2 * n)) and result.score < 1


def test_without_held_out_or_negative_contexts_there_is_no_score(fake):
    client, _ = _client(fake)
    result = explain(client, FeatureEvidence((CAT_CONTEXTS[0],), ()), NEGATIVES)
    assert result.text == "fires on cat" and result.score is None and result.n_scored == 0
    assert len(fake.requests) == 1
    with pytest.raises(ExplainerError, match="no activating contexts"):
        explain(client, FeatureEvidence((), ()), NEGATIVES)


def test_answers_are_cleaned_and_checked():
    reply = "<think>hmm, cats</think>\nExplanation: \"Cats and kittens.\"\nmore"
    assert clean_explanation(reply) == "Cats and kittens"
    long = " ".join(f"w{i}" for i in range(30))
    assert len(clean_explanation(long).split()) == MAX_WORDS
    with pytest.raises(ExplainerResponseError):
        clean_explanation("   \n ")
    assert parse_predictions("Sure: [1, 0, true]", 3) == [True, False, True]
    with pytest.raises(ExplainerResponseError, match="list of 2"):
        parse_predictions("[1, 0, 1]", 2)


def test_evidence_from_a_dashboard_marks_the_peak_and_skips_repeats():
    example = {"tokens": ["a", " cat", "\n", "x"], "tokens_acts_list": [0, 3.0, 0.5, 0], "train_token_ind": 7}
    dashboard = {"top_logits": [" meow"], "examples_quantiles": [
        {"quantile_name": "Top activations", "examples": [example, {**example}]},
        {"quantile_name": "Quantile", "examples": [{"tokens": ["b"], "tokens_acts_list": [0.0]}]},
    ]}
    evidence = evidence_from_dashboard(dashboard)
    assert len(evidence.contexts) == 1 and evidence.top_logits == (" meow",)
    assert render_context(evidence.contexts[0]) == "a<< cat>>\\nx"


# ---- the client's errors -----------------------------------------------------------------------


def test_a_refused_key_says_so_and_never_shows_the_key():
    with FakeExplainer(api_key="right-key") as fake:
        client, _ = _client(fake, api_key="wrong-secret-key")
        with pytest.raises(ExplainerAuthError) as info:
            client.complete([{"role": "user", "content": "hi"}])
        assert "HTTP 401" in str(info.value) and "API key" in str(info.value)
        assert "wrong-secret-key" not in str(info.value) and "wrong-secret-key" not in repr(client)
        assert fake.requests[0]["headers"]["Authorization"] == "Bearer wrong-secret-key"
        ok, _ = _client(fake, api_key="right-key")
        assert ok.complete([{"role": "user", "content": "1. <<x>>"}])[0] == "fires on x"


def test_server_errors_are_retried_with_backoff(fake):
    client, slept = _client(fake, retries=3, backoff_s=0.5)
    fake.fail_next("status", 500, times=2)
    text, model = client.complete([{"role": "user", "content": "1. a <<tok>>"}])
    assert (text, model) == ("fires on tok", "m-1")
    assert slept == [0.5, 1.0] and len(fake.requests) == 3


def test_rate_limits_follow_retry_after_then_give_up(fake):
    client, slept = _client(fake, retries=2)
    fake.fail_next("status", (429, {"Retry-After": "7"}), times=3)
    with pytest.raises(ExplainerRateLimited, match="HTTP 429"):
        client.complete([{"role": "user", "content": "x"}])
    assert slept == [7.0, 7.0] and len(fake.requests) == 3


def test_a_slow_endpoint_times_out(fake):
    client, _ = _client(fake, timeout_s=0.3)
    fake.fail_next("sleep", 1.5)
    with pytest.raises(ExplainerUnavailable, match=r"did not answer within 0.3 s"):
        client.complete([{"role": "user", "content": "x"}])


def test_malformed_json_is_a_clear_error(fake):
    client, _ = _client(fake)
    fake.fail_next("raw", b"<html>proxy error</html>")
    with pytest.raises(ExplainerResponseError, match="did not answer with a chat completion"):
        client.complete([{"role": "user", "content": "x"}])
    fake.fail_next("raw", b'{"choices": []}')
    with pytest.raises(ExplainerResponseError):
        client.complete([{"role": "user", "content": "x"}])


def test_unreachable_wrong_path_and_bad_urls():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(ExplainerUnavailable, match="cannot reach the explainer"):
        ChatClient(f"http://127.0.0.1:{port}/v1", retries=0).complete([{"role": "user", "content": "x"}])
    with FakeExplainer() as fake:
        with pytest.raises(ExplainerResponseError, match="usually ends in /v1"):
            ChatClient(fake.url.removesuffix("/v1")).complete([{"role": "user", "content": "x"}])
    with pytest.raises(ExplainerError, match="http:// or https://"):
        ChatClient("127.0.0.1:8080")


# ---- a store and the CLI -----------------------------------------------------------------------

VOCAB = ["<bos>", " the", " cat", " sat", " on", " a", " mat", " dog", " ran", " far", " sun", " hot"]
CAT = VOCAB.index(" cat")
SEQ, ROWS, CAT_ROWS, CAT_POS = 16, 40, 10, 8


def write_toy_store(folder: Path) -> Path:
    """A store of 1 layer x 2 features: feature 0 fires on " cat" (rows 0-9 only), feature 1 never."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    others = [i for i in range(1, len(VOCAB)) if i != CAT]
    tokens = rng.choice(others, size=(ROWS, SEQ)).astype(np.int32)
    tokens[:, 0] = 0
    tokens[:CAT_ROWS, CAT_POS] = CAT
    np.save(folder / TOKENS, tokens)
    write_vocab(folder, VOCAB)
    before, after, n_logits, edges = 4, 2, 2, [0.1, 1.0]
    width = before + 1 + after
    writer = StoreWriter(folder, d_transcoder=2)
    rows = []
    for f, k in ((0, CAT_ROWS), (1, 0)):
        window = np.zeros((k, width), np.float16)
        window[:, before] = 2.0
        blob = codec.FeatureBlob(
            header={"groups": [], "quantile_values": [0.0, 2.0]},
            top_act=np.full(k, 2.0, np.float32), top_index=np.arange(k, dtype=np.int64) * SEQ + CAT_POS,
            top_window=window, smp_act=np.zeros(0, np.float32), smp_index=np.zeros(0, np.int64),
            smp_window=np.zeros((0, width), np.float16), hist=np.zeros(len(edges) + 1, np.int64),
            logit_ids=np.array([VOCAB.index(" mat"), VOCAB.index(" sat"), 1, 5], np.int32),
            logit_values=np.array([2.0, 1.0, -1.0, -2.0], np.float32))
        rows.append((f, k, 2.0 if k else 0.0, 2.0 if k else 0.0, codec.encode(blob)))
    writer.add_features(0, rows)
    writer.commit()
    write_manifest(folder, {
        "format": FORMAT, "version": VERSION, "model": {"name": "toy"}, "transcoders": {"name": "toy-tc"},
        "corpus": "toy", "seq_len": SEQ, "n_tokens": ROWS * SEQ, "n_tokens_counted": ROWS * (SEQ - 1),
        "layers": [0], "d_transcoder": 2, "histogram_edges": edges,
        "config": {"window_before": before, "window_after": after, "n_logits": n_logits}})
    return folder


def test_random_contexts_avoid_the_rows_where_the_feature_fires(tmp_path):
    store = FeatureStore.open(write_toy_store(tmp_path / "store"))
    contexts = random_contexts(store, 0, 0, 8, seed=1)
    assert len(contexts) == 8 and all(" cat" not in c.tokens and c.peak is None for c in contexts)
    assert all("<bos>" not in c.tokens for c in contexts)


def test_explain_a_store_feature(fake, tmp_path):
    store = FeatureStore.open(write_toy_store(tmp_path / "store"))
    client, _ = _client(fake)
    result = explain_store_feature(client, store, 0, 0)
    assert result.text == "fires on cat" and result.score == 1.0 and result.n_scored == 10


def test_cli_prints_the_explanation_and_its_score(fake, tmp_path, monkeypatch):
    folder = write_toy_store(tmp_path / "store")
    monkeypatch.setenv("GLASSBOX_EXPLAINER_API_KEY", "cli-secret")
    args = ["features", "explain", "--features", str(folder), "--layer", "0", "--feature", "0",
            "--url", fake.url, "--model", "local-7b"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "fires on cat" in res.output and "score 1.00 on 10 held-out contexts" in res.output
    assert "local-7b" in res.output and PROMPT_VERSION in res.output and "cli-secret" not in res.output
    assert fake.requests[0]["headers"]["Authorization"] == "Bearer cli-secret"

    res = CliRunner().invoke(app, [*args, "--json"])
    doc = json.loads(res.output)
    assert doc["text"] == "fires on cat" and doc["score"] == 1.0 and doc["prompt_version"] == PROMPT_VERSION

    dead = CliRunner().invoke(app, [*args[:7], "1", "--url", fake.url])
    assert dead.exit_code == 2 and "no activating contexts" in dead.output
    fake.fail_next("status", 401)
    refused = CliRunner().invoke(app, [*args, "--retries", "0"])
    assert refused.exit_code == 2 and "HTTP 401" in refused.output


def test_cli_without_an_endpoint_says_how_to_give_one(tmp_path, monkeypatch):
    monkeypatch.delenv("GLASSBOX_EXPLAINER_URL", raising=False)
    folder = write_toy_store(tmp_path / "store")
    res = CliRunner().invoke(app, ["features", "explain", "--features", str(folder), "--layer", "0",
                                   "--feature", "0"])
    assert res.exit_code == 2 and "--url" in res.output and "GLASSBOX_EXPLAINER_URL" in res.output

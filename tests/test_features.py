"""Feature dashboards on a tiny model, checked against brute force over every corpus position."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch

from glassbox.features import BuildConfig, FeatureStore, build_features
from glassbox.features.errors import FeatureBuildError, FeatureStoreError
from glassbox.features.export import to_feature_details
from glassbox.features.inputs import input_from_record
from glassbox.features.labels import METHOD
from glassbox.features.logits import feature_directions, top_bottom_logits
from glassbox.features.state import LayerState, LayerUpdater, batch_generator
from glassbox.graph.schemas import load_schema
from glassbox.models.norms import norm_gain
from glassbox.testing import WORDS, make_random_transcoders, make_tiny_model

SCHEMA = load_schema("feature-details")
CFG = BuildConfig(seq_len=16, batch_size=4, top_k=5, window_before=4, window_after=2, samples_per_band=3,
                  examples_per_group=4, n_logits=8)
N_TOKENS = 16 * 4 * 9 + 5  # 37 rows: the last batch is short


def write_corpus(path: Path, *, n_docs: int = 80, seed: int = 0) -> Path:
    rng = random.Random(seed)
    docs = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 70))) for _ in range(n_docs)]
    path.write_text("\n\n".join(docs))
    return path


@pytest.fixture(scope="module")
def tiny():
    model = make_tiny_model("gemma3", dtype=torch.float64)
    tc = make_random_transcoders(model, activation="topk", k=6, d_transcoder=24)
    return model, tc


@pytest.fixture(scope="module")
def built(tiny, tmp_path_factory):
    model, tc = tiny
    root = tmp_path_factory.mktemp("features")
    corpus = write_corpus(root / "corpus.txt")
    out = build_features(model, tc, corpus, n_tokens=N_TOKENS, output_dir=root / "store", config=CFG,
                         split="all")
    return corpus, out, FeatureStore.open(out)


@pytest.fixture(scope="module")
def brute(tiny, built):
    """(L, rows, T, F) activations at every position, computed in one unbatched pass."""
    model, tc = tiny
    store = built[2]
    tokens = torch.from_numpy(np.array(store.tokens)).long()
    fwd = model.forward(tokens, keep_layers=True, logits_at="none")
    special = torch.tensor(model.tokenizer.all_special_ids)
    mask = ~torch.isin(tokens, special)
    acts = [tc.activate(l, tc.encode(l, input_from_record(tc.input_hook, rec))).clamp(min=0) * mask[..., None]
            for l, rec in enumerate(fwd.layers)]
    return torch.stack(acts).float().numpy(), int(mask.sum())


def all_keys(store: FeatureStore) -> list[tuple[int, int]]:
    return [(layer, f) for layer in store.layers for f in range(store.d_transcoder)]


# ---- what the store holds, against brute force -----------------------------------------------------

def test_top_contexts_are_the_highest_activations(built, brute):
    _, _, store = built
    acts, _ = brute  # (L, S, T, F)
    T = store.seq_len
    checked = 0
    for layer, f in all_keys(store):
        a = acts[layer, :, :, f]  # (S, T)
        row_max = a.max(axis=1)
        want = np.sort(row_max[row_max > 0])[::-1][: CFG.top_k]
        top = store.get(layer, f)["examples_quantiles"]
        examples = top[0]["examples"] if top and top[0]["quantile_name"] == "Top activations" else []
        got = np.array([ex["act"] for ex in examples])
        np.testing.assert_allclose(got, want, rtol=1e-5, err_msg=f"feature {layer}/{f}")
        rows = [ex["train_token_ind"] // T for ex in examples]
        assert len(set(rows)) == len(rows), "one example per row"
        for ex in examples:
            row, pos = divmod(ex["train_token_ind"], T)
            assert a[row, pos] == pytest.approx(ex["act"], rel=1e-5)
            assert a[row].argmax() == pos or a[row, a[row].argmax()] == a[row, pos]
            lo = pos - ex["max_index"]
            window = a[row, lo: lo + len(ex["tokens"])]
            np.testing.assert_allclose(ex["tokens_acts_list"], window, rtol=2e-3, atol=1e-3)
            assert ex["tokens"] == store.vocab[store.tokens[row, lo: lo + len(ex["tokens"])]].tolist()
            checked += 1
    assert checked > 50


def test_frequencies_and_histograms_match_a_direct_count(built, brute):
    _, _, store = built
    acts, n_counted = brute
    edges = np.array(store.edges, dtype=np.float32)
    assert store.manifest["n_tokens_counted"] == n_counted
    for layer, f in all_keys(store):
        d = store.get(layer, f, examples=False)
        v = acts[layer, :, :, f]
        fired = v[v > 0]
        assert d["n_fires"] == fired.size
        assert d["activation_frequency"] == pytest.approx(fired.size / n_counted)
        hist = np.bincount(np.searchsorted(edges, fired, side="right"), minlength=len(edges) + 1)
        assert d["histogram"] == hist.tolist(), f"feature {layer}/{f}"
        if fired.size:
            assert d["act_max"] == pytest.approx(fired.max(), rel=1e-5)
            assert d["act_min"] == pytest.approx(fired.min(), rel=1e-5)
            assert d["act_mean"] == pytest.approx(fired.mean(), rel=1e-5)
    assert sum(store.get(layer, f, examples=False)["n_fires"] for layer, f in all_keys(store)) > 0


def test_quantile_examples_are_real_activations_in_their_group(built, brute):
    _, _, store = built
    acts, _ = brute
    T = store.seq_len
    n_groups = 0
    for layer, f in all_keys(store):
        d = store.get(layer, f)
        groups = d["examples_quantiles"][1:]
        tops = {ex["train_token_ind"] for ex in d["examples_quantiles"][0]["examples"]} if groups else set()
        for g in groups:
            assert 0 < len(g["examples"]) <= CFG.examples_per_group
            for ex in g["examples"]:
                row, pos = divmod(ex["train_token_ind"], T)
                assert acts[layer, row, pos, f] == pytest.approx(ex["act"], rel=1e-5)
                assert g["lower"] * (1 - 1e-6) <= ex["act"] <= g["upper"] * (1 + 1e-6)
                assert ex["train_token_ind"] not in tops
            n_groups += 1
        if groups:
            assert sum(g["count"] for g in groups) <= d["n_fires"]
    assert n_groups > 20


def test_logits_match_the_matrix_product(tiny, built):
    model, tc = tiny
    store = built[2]
    W_U = model.unembedding.double()  # (V, d)
    gain = norm_gain(model.decoder.norm, model.spec).double()
    n = CFG.n_logits
    for layer in store.layers:
        rows = tc.layers[layer].W_dec.rows(torch.arange(tc.d_transcoder), dtype=torch.float64, device="cpu")
        logits = (rows * gain) @ W_U.T  # (F, V)
        logits = logits - logits.mean(dim=1, keepdim=True)
        for f in range(tc.d_transcoder):
            d = store.get(layer, f, examples=False)
            top = logits[f].topk(n)
            bottom = (-logits[f]).topk(n)
            assert d["top_logits_ids"] == top.indices.tolist()
            np.testing.assert_allclose(d["top_logits_values"], top.values.numpy(), rtol=1e-4, atol=1e-5)
            assert d["bottom_logits_ids"] == bottom.indices.tolist()
            np.testing.assert_allclose(d["bottom_logits_values"], -bottom.values.numpy(),
                                       rtol=1e-4, atol=1e-5)
            assert d["top_logits"] == store.vocab[top.indices.numpy()].tolist()


def test_bf16_unembedding_candidates_are_reranked_exactly():
    """bf16 finds candidates, float32 ranks them: the result equals the exact product."""
    model = make_tiny_model("gemma3", dtype=torch.bfloat16)
    directions = torch.randn(40, model.d_model)
    directions[7] = 0  # a null feature (zero decoder row) promotes nothing
    table = top_bottom_logits(model, directions, n=6)
    u = (directions * norm_gain(model.decoder.norm, model.spec).float()).double()
    exact = u @ model.unembedding.double().T
    exact = exact - exact.mean(dim=1, keepdim=True)
    for f in range(40):
        if f == 7:
            assert table.top_ids[f].tolist() == [-1] * 6 and table.bottom_ids[f].tolist() == [-1] * 6
            continue
        assert table.top_ids[f].tolist() == exact[f].topk(6).indices.tolist()
        assert table.bottom_ids[f].tolist() == (-exact[f]).topk(6).indices.tolist()
        want = exact[f].topk(6).values
        torch.testing.assert_close(table.top_values[f].double(), want, rtol=1e-4, atol=1e-4)


def test_clt_direction_is_the_sum_of_its_decoder_rows():
    model = make_tiny_model("llama", dtype=torch.float64)
    tc = make_random_transcoders(model, kind="clt")
    rows = tc.layers[0].W_dec.rows(torch.arange(tc.d_transcoder), dtype=torch.float64, device="cpu")
    got = feature_directions(model, tc, 0).double()
    torch.testing.assert_close(got, rows.sum(dim=1), rtol=1e-6, atol=1e-6)


def test_exports_validate_against_the_schema(built):
    store = built[2]
    for d in store.get_many(all_keys(store)):
        details = to_feature_details(d)
        jsonschema.validate(details, SCHEMA)
        jsonschema.validate(d, SCHEMA)
        s = d["layer"] + d["feature"]
        assert details["index"] == s * (s + 1) // 2 + d["feature"]  # Cantor pair
        assert set(details) >= {"index", "examples_quantiles", "top_logits", "bottom_logits"}
        for q in details["examples_quantiles"]:
            for ex in q["examples"]:
                assert len(ex["tokens"]) == len(ex["tokens_acts_list"])


# ---- lookups and labels ------------------------------------------------------------------------------

def test_get_many_keeps_order_and_matches_get(built):
    store = built[2]
    keys = [(1, 3), (0, 0), (1, 3), (0, 23)]
    many = store.get_many(keys)
    assert [(d["layer"], d["feature"]) for d in many] == keys
    assert many[0] == store.get(1, 3) == many[2]
    few = store.get_many(keys, examples=2)
    full = store.get(1, 3)["examples_quantiles"]
    assert [g["quantile_name"] for g in few[0]["examples_quantiles"]] == [g["quantile_name"] for g in full]
    for g_few, g_full in zip(few[0]["examples_quantiles"], full, strict=True):
        assert g_few["examples"] == g_full["examples"][:2]
    assert store.get_many(keys, examples=False)[0]["examples_quantiles"] == []
    with pytest.raises(FeatureStoreError, match="out of range"):
        store.get(0, 24)
    with pytest.raises(FeatureStoreError, match="not in this store"):
        store.get(5, 0)


def test_every_feature_has_an_auto_label_with_provenance(built):
    store = built[2]
    labels = store.auto_labels(all_keys(store))
    assert len(labels) == len(all_keys(store))
    for (layer, f), text in labels.items():
        assert text and len(text) < 80
        prov = store.label_provenance(layer, f)
        assert prov["kind"] == "auto" and prov["method"] == METHOD  # more: test_feature_labels.py
    fired = next(k for k in all_keys(store) if store.get(*k, examples=False)["n_fires"] > 0)
    assert not store.auto_label(*fired).startswith("dead")


# ---- streaming state ---------------------------------------------------------------------------------

def test_reservoir_samples_are_uniform_within_a_band():
    """One feature fires 30 times at the same activation over 3 batches; each firing is kept ~R/30."""
    cfg = BuildConfig(seq_len=10, top_k=2, samples_per_band=3, window_before=1, window_after=1)
    updater = LayerUpdater(cfg)
    counts = np.zeros(30, dtype=int)
    for trial in range(300):
        st = LayerState.empty(1, cfg)
        for batch in range(3):
            acts = torch.full((1, 10, 1), 2.0)
            updater.update(st, acts, first_row=batch, gen=batch_generator(trial, batch, 0))
        kept = st.smp_index[0][st.smp_key[0] >= 0]
        assert kept.numel() == 3 and kept.unique().numel() == 3
        counts[kept.numpy()] += 1
    # expected 30 per position; a biased merge (e.g. keeping the first batch) fails this
    assert counts.min() >= 10 and counts.max() <= 55, counts


def test_state_memory_does_not_grow_with_the_corpus():
    cfg = BuildConfig(seq_len=8, top_k=3)
    st = LayerState.empty(5, cfg)
    sizes = {k: v.shape for k, v in st.to_dict().items()}
    updater = LayerUpdater(cfg)
    for b in range(20):
        updater.update(st, torch.rand(2, 8, 5), first_row=2 * b, gen=batch_generator(0, b, 0))
    assert {k: v.shape for k, v in st.to_dict().items()} == sizes
    assert int(st.n_fires.sum()) == 20 * 2 * 8 * 5


# ---- resumability and folder safety --------------------------------------------------------------------

class _StopAfter:
    """A progress callback that interrupts the stream after n batches (like Ctrl-C or a kill)."""

    def __init__(self, batches: int) -> None:
        self.left = batches + 1  # the first call reports the starting point
        self.first_stream: int | None = None

    def __call__(self, phase: str, done: int, total: int) -> None:
        if phase != "stream":
            return
        if self.first_stream is None:
            self.first_stream = done
        self.left -= 1
        if self.left == 0:
            raise KeyboardInterrupt


def _table(path: Path, sql: str) -> list:
    with sqlite3.connect(path / "features.sqlite") as db:
        return db.execute(sql).fetchall()


def test_resume_after_interrupt_gives_the_same_store(tiny, built, tmp_path):
    model, tc = tiny
    corpus, reference, _ = built
    out = tmp_path / "resumed"
    args = dict(n_tokens=N_TOKENS, output_dir=out, config=CFG, split="all", checkpoint_every=2,
                checkpoint_seconds=1e9)
    with pytest.raises(KeyboardInterrupt):
        build_features(model, tc, corpus, progress=_StopAfter(5), **args)  # last checkpoint: batch 4
    assert (out / "checkpoint.pt").is_file() and not (out / "manifest.json").exists()
    with pytest.raises(FeatureStoreError, match="resume"):
        FeatureStore.open(out)
    second = _StopAfter(10_000)
    build_features(model, tc, corpus, progress=second, **args)
    assert second.first_stream == 4 * CFG.batch_size * CFG.seq_len  # resumed at batch 4, not 0
    sql = "SELECT id, n_fires, act_max, act_mean, data FROM features ORDER BY id"
    assert _table(out, sql) == _table(reference, sql)
    labels = "SELECT id, text FROM labels ORDER BY id"
    assert _table(out, labels) == _table(reference, labels)
    assert not (out / "checkpoint.pt").exists()


def test_a_folder_with_another_build_is_refused(tiny, built, tmp_path):
    model, tc = tiny
    corpus, reference, _ = built
    with pytest.raises(FeatureBuildError, match="already holds a finished"):
        build_features(model, tc, corpus, n_tokens=N_TOKENS, output_dir=reference, config=CFG, split="all")
    out = tmp_path / "other"
    with pytest.raises(KeyboardInterrupt):
        build_features(model, tc, corpus, n_tokens=N_TOKENS, output_dir=out, config=CFG, split="all",
                       progress=_StopAfter(1), checkpoint_every=1)
    with pytest.raises(FeatureBuildError, match="n_tokens"):
        build_features(model, tc, corpus, n_tokens=2 * N_TOKENS, output_dir=out, config=CFG, split="all")
    other_tc = make_random_transcoders(model, activation="topk", k=6, d_transcoder=24, seed=7)
    with pytest.raises(FeatureBuildError, match="fingerprint"):
        build_features(model, other_tc, corpus, n_tokens=N_TOKENS, output_dir=out, config=CFG, split="all")
    path = build_features(model, other_tc, corpus, n_tokens=N_TOKENS, output_dir=out, config=CFG, split="all",
                          overwrite=True, layers=[1])
    assert FeatureStore.open(path).layers == [1]


def test_features_that_never_fire_are_served_with_a_few_examples(tmp_path):
    """A dead feature has no sample groups: the viewer's short fetch (examples=N) must still work."""
    model = make_tiny_model("gemma3", dtype=torch.float64)
    tc = make_random_transcoders(model, activation="relu", d_transcoder=24, seed=1)
    tc.layers[0].b_enc[5] = -1e9  # never fires
    corpus = write_corpus(tmp_path / "corpus.txt", n_docs=20)
    out = build_features(model, tc, corpus, n_tokens=300, output_dir=tmp_path / "store", config=CFG,
                         split="all")
    store = FeatureStore.open(out)
    dead = store.get(0, 5)
    assert dead["activation_frequency"] == 0 and dead["examples_quantiles"] == []
    few = store.get_many(all_keys(store), examples=2)
    assert len(few) == len(all_keys(store)) and few[5]["examples_quantiles"] == []
    assert any(d["examples_quantiles"] for d in few)

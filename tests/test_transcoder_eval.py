"""`glassbox transcoders eval` numbers against a direct computation with the HF model's own forward."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from test_training import write_tiny_corpus
from typer.testing import CliRunner

from glassbox.cli import app
from glassbox.testing import make_random_transcoders, make_tiny_model, make_tiny_model_dir
from glassbox.training.data import eval_batches
from glassbox.training.evaluate import PromptCheck, _take, evaluate_transcoders
from glassbox.transcoders import load_transcoders, save_transcoders

SEQ = 16


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_tiny_corpus(tmp_path_factory.mktemp("corpus"), n_docs=400)


@pytest.fixture(scope="module")
def model():
    return make_tiny_model("gemma3")


def _files(folder: Path, n_layers: int) -> list[dict[str, torch.Tensor]]:
    return [load_file(str(folder / f"layer_{i}.safetensors")) for i in range(n_layers)]


def _reconstruct(t: dict[str, torch.Tensor], x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """circuit-tracer's PLT math, written out from the raw tensors: TopK keeps the k largest values."""
    pre = x @ t["W_enc"].T + t["b_enc"]
    vals, idx = pre.topk(k, dim=-1)
    acts = torch.zeros_like(pre).scatter(-1, idx, vals)
    return acts @ t["W_dec"] + t["b_dec"] + x @ t["W_skip"].T, acts


def _hf_run(model, tokens: torch.Tensor, files, k: int, mode: str, only: int | None = None,
            output_hook: str = "hook_mlp_out"):
    """HF forward with hooks: capture (x, y) per layer, or replace MLP outputs but at position 0.

    hook_mlp_out: y is post_feedforward_layernorm's output; mlp.hook_out: y is the MLP's own output
    (before that norm, which then runs on the replacement)."""
    layers = model.hf_model.model.layers
    captured: dict[int, list[torch.Tensor]] = {}
    handles = []
    for i, layer in enumerate(layers):
        def grab_in(mod, inp, out, i=i):
            captured[i] = [out]

        def replace_out(mod, inp, out, i=i):
            captured[i].append(out)
            if mode == "capture" or (only is not None and i != only):
                return out
            new = torch.zeros_like(out) if mode == "zero" else _reconstruct(files[i], captured[i][0], k)[0]
            new[:, 0] = out[:, 0]
            return new

        target = layer.post_feedforward_layernorm if output_hook == "hook_mlp_out" else layer.mlp
        handles.append(layer.pre_feedforward_layernorm.register_forward_hook(grab_in))
        handles.append(target.register_forward_hook(replace_out))
    try:
        with torch.no_grad():
            logits = model.hf_model(tokens).logits
    finally:
        for h in handles:
            h.remove()
    return logits, captured


def _ce(logits: torch.Tensor, tokens: torch.Tensor) -> tuple[float, int]:
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1),
                           reduction="sum")
    return float(loss), tokens[:, 1:].numel()


@pytest.mark.parametrize("output_hook", ["hook_mlp_out", "mlp.hook_out"])
def test_eval_matches_a_direct_computation(model, corpus, tmp_path, output_hook):
    k = 5
    tset = make_random_transcoders(model, activation="topk", k=k, d_transcoder=24, skip=True,
                                   output_hook=output_hook)
    folder = save_transcoders(tset, tmp_path / "set")
    tset = load_transcoders(folder)
    ev = evaluate_transcoders(model, tset, str(corpus), fvu_tokens=400, ce_tokens=200,
                              single_layer_tokens=100, prompts=["Fact : Michael Jordan plays the sport of"],
                              seq_len=SEQ, batch_size=4)
    files = _files(folder, model.n_layers)
    batches = eval_batches(str(corpus), model.tokenizer, seq_len=SEQ, batch_size=4, n_tokens=400)

    # reconstruction: FVU, L0, dead features
    for layer in range(model.n_layers):
        xs, ys = [], []
        for tokens in _take(batches, 400):
            _, cap = _hf_run(model, tokens, files, k, "capture", output_hook=output_hook)
            xs.append(cap[layer][0][:, 1:].reshape(-1, model.d_model))
            ys.append(cap[layer][1][:, 1:].reshape(-1, model.d_model))
        x, y = torch.cat(xs), torch.cat(ys)
        y_hat, acts = _reconstruct(files[layer], x, k)
        fvu = float(((y_hat - y) ** 2).sum() / ((y - y.mean(0)) ** 2).sum())
        row = ev["per_layer"][layer]
        assert row["fvu"] == pytest.approx(fvu, rel=1e-4)
        assert row["l0"] == pytest.approx(float((acts != 0).sum(-1).float().mean()))
        assert row["dead_frac"] == pytest.approx(1 - float((acts != 0).any(0).float().mean()))
        assert row["tokens"] == x.shape[0]

    # cross-entropy: original, zero-ablated, every MLP spliced, one MLP spliced
    def ce(mode: str, n_tokens: int, only: int | None = None) -> float:
        total, count = 0.0, 0
        for tokens in _take(batches, n_tokens):
            s, n = _ce(_hf_run(model, tokens, files, k, mode, only, output_hook)[0], tokens)
            total, count = total + s, count + n
        return total / count

    orig, zero, spliced = ce("capture", 200), ce("zero", 200), ce("splice", 200)
    assert ev["ce_orig"] == pytest.approx(orig, rel=1e-4)
    assert ev["ce_zero_ablation"] == pytest.approx(zero, rel=1e-4)
    assert ev["ce_spliced"] == pytest.approx(spliced, rel=1e-4)
    assert ev["ce_loss_recovered"] == pytest.approx((zero - spliced) / (zero - orig), rel=1e-3, abs=1e-3)
    assert abs(spliced - orig) > 1e-3  # the splice changes something, so the check can fail
    one = ev["single_layer"]["layers"][1]
    assert one["ce"] == pytest.approx(ce("splice", 100, only=1), rel=1e-4)
    assert 0.0 <= ev["graphs"][0]["replacement"] <= 1.0


def test_heldout_and_prompt_checks_match_a_direct_computation(model, corpus, tmp_path):
    """Held-out CE recovered and the next-token checks, against the HF model run with hooks."""
    k = 5
    tset = make_random_transcoders(model, activation="topk", k=k, d_transcoder=24, skip=True,
                                   output_hook="mlp.hook_out")
    folder = save_transcoders(tset, tmp_path / "set")
    tset = load_transcoders(folder)
    other = write_tiny_corpus(tmp_path / "other", n_docs=300, seed=7)  # not the corpus' text
    prompt = "Fact : Michael Jordan plays the sport of"
    ev = evaluate_transcoders(model, tset, str(corpus), fvu_tokens=100, ce_tokens=100, single_layer_tokens=0,
                              prompts=(), heldout=[str(other)], heldout_tokens=150,
                              checks=[PromptCheck(prompt, " sport"), PromptCheck(prompt)], seq_len=SEQ,
                              batch_size=4)
    files = _files(folder, model.n_layers)
    held = ev["heldout"][str(other)]
    batches = _take(eval_batches(str(other), model.tokenizer, seq_len=SEQ, batch_size=4, n_tokens=150), 150)

    def ce(mode: str) -> float:
        total, count = 0.0, 0
        for tokens in batches:
            s, n = _ce(_hf_run(model, tokens, files, k, mode, output_hook="mlp.hook_out")[0], tokens)
            total, count = total + s, count + n
        return total / count

    orig, zero, spliced = ce("capture"), ce("zero"), ce("splice")
    assert held["ce_orig"] == pytest.approx(orig, rel=1e-4)
    assert held["ce_loss_recovered"] == pytest.approx((zero - spliced) / (zero - orig), rel=1e-3, abs=1e-3)
    assert held["ce_loss_recovered"] != pytest.approx(ev["ce_loss_recovered"], abs=1e-6)  # other text
    assert ev["heldout_mean_ce_loss_recovered"] == held["ce_loss_recovered"]

    ids = torch.tensor([model.tokenize(prompt)])
    target = model.tokenizer(" sport", add_special_tokens=False)["input_ids"][0]
    for name, mode in (("original", "capture"), ("spliced", "splice")):
        logits = _hf_run(model, ids, files, k, mode, output_hook="mlp.hook_out")[0][0, -1]
        probs = torch.softmax(logits.float(), -1)
        row = ev["prompt_checks"][0]
        assert row[f"{name}_top1"] == model.tokenizer.decode([int(probs.argmax())])
        assert row[f"{name}_expected_prob"] == pytest.approx(float(probs[target]), rel=1e-4)
    assert ev["prompt_checks"][1]["original_expected_prob"] is None
    assert ev["prompt_top1_kept"] == sum(r["top1_kept"] for r in ev["prompt_checks"])


def test_eval_command_prints_table_and_saves_json(corpus, tmp_path):
    model_dir = make_tiny_model_dir(tmp_path / "model", "gemma3")
    from glassbox.testing import make_random_transcoders_dir

    tcs = make_random_transcoders_dir(tmp_path / "tcs", model_dir, activation="topk", k=4)
    out = tmp_path / "eval.json"
    res = CliRunner().invoke(app, ["transcoders", "eval", "-m", str(model_dir), "-t", str(tcs),
                                   "-c", str(corpus),
                                   "--seq-len", str(SEQ), "--fvu-tokens", "200", "--ce-tokens", "100",
                                   "--single-layer-tokens", "50", "--max-feature-nodes", "20", "-o", str(out),
                                   "--heldout", str(corpus), "--heldout-tokens", "100",
                                   "--dtype", "float32", "-q"])
    assert res.exit_code == 0, res.output
    assert "| layer | FVU |" in res.output and "CE loss recovered" in res.output
    assert "replacement" in res.output and "(held out)" in res.output and "Top-1 kept" in res.output
    data = json.loads(out.read_text())
    assert len(data["per_layer"]) == 2 and len(data["graphs"]) == 3
    assert list(data["heldout"]) == [str(corpus)] and data["prompt_checks"]

    missing = CliRunner().invoke(app, ["transcoders", "eval", "-m", str(model_dir), "-t", str(tcs), "-c",
                                       str(corpus), "--heldout", "no-such-set", "-q"])
    assert missing.exit_code != 0 and "neither a built corpus nor a held-out set" in missing.output


def test_eval_command_traces_the_featured_prompts(corpus, tmp_path, monkeypatch):
    """--graph-prompts featured traces the graphs the setup stores, with their mean error share."""
    import glassbox.examples
    from glassbox.examples import FEATURED
    from glassbox.testing import make_random_transcoders_dir
    from glassbox.training.evaluate import graph_prompt_set

    assert graph_prompt_set("featured") == tuple(item.prompt for item in FEATURED)
    model_dir = make_tiny_model_dir(tmp_path / "model", "gemma3")
    # the tiny model's word-level tokenizer has no Chinese: trace the prompts it can read
    readable = tuple(item for item in FEATURED if item.prompt.isascii())
    monkeypatch.setattr(glassbox.examples, "FEATURED", readable)
    tcs = make_random_transcoders_dir(tmp_path / "tcs", model_dir, activation="topk", k=4)
    out = tmp_path / "eval.json"
    base = ["transcoders", "eval", "-m", str(model_dir), "-t", str(tcs), "-c", str(corpus), "--seq-len",
            str(SEQ), "--fvu-tokens", "50", "--ce-tokens", "50", "--single-layer-tokens", "0", "--no-heldout",
            "--no-checks", "--max-feature-nodes", "10", "--dtype", "float32", "-q", "-o", str(out)]
    res = CliRunner().invoke(app, [*base, "--graph-prompts", "featured"])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert [g["prompt"] for g in data["graphs"]] == [item.prompt for item in readable]
    shares = [g["error_share"] for g in data["graphs"]]
    assert data["mean_error_share"] == pytest.approx(sum(shares) / len(shares))
    assert "| **mean** |" in res.output

    bad = CliRunner().invoke(app, [*base, "--graph-prompts", "famous"])
    assert bad.exit_code != 0 and "unknown graph prompt set 'famous'" in bad.output


def test_eval_command_bad_input_is_one_line(tmp_path):
    res = CliRunner().invoke(app, ["transcoders", "eval", "-m", str(tmp_path / "nope"), "-t", str(tmp_path)])
    assert res.exit_code == 2 and "error:" in res.output


@pytest.mark.slow
def test_reference_set_eval_reproduces_its_readme(reference_transcoders_dir, gemma_model, offline_corpus):
    """The reference set: mean FVU about 0.2 and only a few % of CE recovered (its README).

    Needs that folder itself (skips and says so without it); the corpus is built in the test home."""
    tset = load_transcoders(reference_transcoders_dir)
    ev = evaluate_transcoders(gemma_model, tset, offline_corpus, fvu_tokens=2000, ce_tokens=1000,
                              single_layer_tokens=0, prompts=())
    assert 0.12 < ev["mean_fvu"] < 0.3
    assert ev["ce_loss_recovered"] < 0.25

"""Training on a tiny model and corpus: loss falls, output loads and traces, a resumed run is exact."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import glassbox
from glassbox.errors import GlassboxError
from glassbox.testing import WORDS, make_tiny_model
from glassbox.training.api import EvalOptions, train_transcoders
from glassbox.training.config import TrainConfig, parse_count, parse_duration
from glassbox.training.evaluate import DenseTranscoders
from glassbox.training.export import to_transcoder_set
from glassbox.training.trainer import Trainer
from glassbox.transcoders import load_transcoders

PROMPT = "Fact : Michael Jordan plays the sport of"
FAST_EVAL = EvalOptions(fvu_tokens=300, ce_tokens=150, single_layer_tokens=60, graphs=True,
                        max_feature_nodes=30)


def write_tiny_corpus(folder: Path, *, n_docs: int = 300, words: int = 80, seed: int = 0) -> Path:
    """A .jsonl corpus of documents made of the tiny tokenizer's words (4% land in the test split)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "docs.jsonl"
    with path.open("w") as f:
        for _ in range(n_docs):
            f.write(json.dumps({"text": " ".join(rng.choice(WORDS) for _ in range(words))}) + "\n")
    return path


def tiny_config(corpus: Path, **overrides) -> TrainConfig:
    options = dict(model="tiny-gemma3", corpus=str(corpus), n_features=40, k=4, tokens=2400, batch_size=8,
                   seq_len=16, lr=3e-3, warmup_steps=3, e2e_kl_positions=4, dead_tokens=600, calib_batches=2,
                   splice_start=0.3, splice_max=0.5, e2e_frac=0.25)
    options.update(overrides)
    return TrainConfig(**options)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny tensors: one thread avoids thread-sync overhead that dominates on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model():
    return make_tiny_model("gemma3")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_tiny_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.mark.parametrize("activation", ["topk", "relu", "jumprelu"])
def test_reconstruction_loss_falls(model, corpus, tmp_path, activation):
    seen: list[list[float]] = []
    cfg = tiny_config(corpus, activation=activation, tokens=6000, e2e_frac=0.0, splice_max=0.0,
                      affine_init=False, lr=1e-2, l1_coef=1e-4, l0_coef=1e-4)
    Trainer(cfg, model, tmp_path, progress=lambda info: seen.append(info["fvu"])).run()
    first = sum(map(sum, seen[:5])) / 5
    last = sum(map(sum, seen[-5:])) / 5
    assert len(seen) == 50
    assert last < 0.6 * first, (first, last)


@pytest.mark.parametrize("target,output_hook", [("mlp", "mlp.hook_out"), ("clean", "hook_mlp_out")])
def test_spliced_rows_and_end_to_end_phase_run(model, corpus, tmp_path, target, output_hook):
    infos: list[dict] = []
    cfg = tiny_config(corpus, tokens=4000, splice_target=target, output_hook=output_hook)
    Trainer(cfg, model, tmp_path, progress=infos.append).run()
    phases = [i["phase"] for i in infos]
    assert phases.count("e2e") == 8 and phases[:24] == ["local"] * 24
    assert max(i["spliced_rows"] for i in infos) == 4  # splice_max 0.5 of 8 rows
    kls = [i["kl"] for i in infos if i["phase"] == "e2e"]
    assert all(k is not None and k >= 0 for k in kls)


def test_output_loads_traces_and_documents_itself(model, corpus, tmp_path):
    out = tmp_path / "set"
    outcome = train_transcoders(tiny_config(corpus), out, model=model, eval_options=FAST_EVAL)
    tset = load_transcoders(out)
    assert (tset.kind, tset.activation, tset.k, tset.d_transcoder, tset.n_layers) == ("plt", "topk", 4, 40, 2)
    assert tset.has_skip and tset.input_hook == "mlp.hook_in" and tset.output_hook == "mlp.hook_out"
    result = glassbox.trace(PROMPT, model=model, transcoders=tset)
    assert 0.0 <= result.replacement_score <= 1.0 and result.graph.n_selected > 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["training"]["tokens"] == outcome.metrics["training"]["tokens"] == 2400
    ev = metrics["eval"]
    assert len(ev["per_layer"]) == 2 and len(ev["graphs"]) == 3 and len(ev["single_layer"]["layers"]) == 2
    assert set(metrics["files_sha256"]) == {"layer_0.safetensors", "layer_1.safetensors"}
    readme = (out / "README.md").read_text()
    assert "CE loss recovered" in readme and "Null features" in readme
    assert "glassbox transcoders train" in readme
    assert not (out / "checkpoint.pt").exists()


def test_saved_topk_set_computes_what_was_trained(model, corpus, tmp_path):
    """circuit-tracer TopK keeps negatives; the null features make the files equal ReLU-TopK anyway."""
    cfg = tiny_config(corpus, tokens=800, e2e_frac=0.0)
    result = Trainer(cfg, model, tmp_path).run()
    stack = result.stack
    with torch.no_grad():
        stack.b_enc[0] -= 3.0  # most pre-activations negative: fewer than k positive per token
    tset = to_transcoder_set(stack, cfg, model_name="tiny")
    x = torch.randn(64, model.d_model) * stack.s_in[0].cpu()  # the saved set lives on the CPU
    acts = tset.activate(0, tset.encode(0, x))
    assert (acts >= 0).all() and ((acts > 0).sum(-1) < cfg.k).any()
    dec = tset.layers[0].W_dec.full(dtype=torch.float32, device=torch.device("cpu"))
    y_files = acts @ dec + tset.layers[0].b_dec + tset.skip(0, x)
    with torch.no_grad():
        dev = stack.s_in.device
        y_trained = (stack.forward_layer(0, x.to(dev) / stack.s_in[0]).y * stack.s_out[0]).cpu()
    torch.testing.assert_close(y_files, y_trained, rtol=1e-4, atol=1e-4)
    assert (dec[cfg.trained_features:] == 0).all()
    assert (tset.layers[0].W_enc[cfg.trained_features:] == 0).all()


@pytest.mark.parametrize("stop_at", [5, 27])  # in the local phase, and in the end-to-end phase
def test_killed_run_resumes_to_the_same_weights(model, corpus, tmp_path, stop_at):
    cfg = tiny_config(corpus, tokens=4000)
    whole = tmp_path / "whole"
    train_transcoders(cfg, whole, model=model, evaluate=False)
    parts = tmp_path / "parts"
    first = train_transcoders(cfg, parts, model=model, evaluate=False, stop_after_steps=stop_at)
    assert not first.finished and (parts / "checkpoint.pt").is_file() and not (parts / "config.yaml").exists()
    with pytest.raises(GlassboxError, match="--resume"):
        train_transcoders(cfg, parts, model=model, evaluate=False)
    second = train_transcoders(cfg, parts, model=model, evaluate=False, resume=True)
    assert second.finished
    for layer in range(model.n_layers):
        a = load_file(str(whole / f"layer_{layer}.safetensors"))
        b = load_file(str(parts / f"layer_{layer}.safetensors"))
        assert a.keys() == b.keys()
        for key in a:
            if model.device.type == "cuda":  # CUDA's scatter/index_add sum in no fixed order
                torch.testing.assert_close(a[key], b[key], rtol=1e-3, atol=1e-4, msg=f"{layer} {key}")
            else:
                assert torch.equal(a[key], b[key]), (layer, key)


def test_resume_refuses_changed_options(model, corpus, tmp_path):
    train_transcoders(tiny_config(corpus), tmp_path, model=model, evaluate=False, stop_after_steps=2)
    with pytest.raises(GlassboxError, match="other options.*lr"):
        train_transcoders(tiny_config(corpus, lr=1e-2), tmp_path, model=model, evaluate=False, resume=True)


def test_a_checkpoint_with_all_layers_in_one_tensor_is_a_clear_error(model, corpus, tmp_path):
    """Checkpoints of earlier versions stacked every layer's weights; they cannot be resumed."""
    from glassbox.training.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint

    train_transcoders(tiny_config(corpus), tmp_path, model=model, evaluate=False, stop_after_steps=2)
    path = checkpoint_path(tmp_path)
    ckpt = load_checkpoint(path)
    ckpt["stack"] = {"W_enc": torch.stack([ckpt["stack"][f"W_enc.{i}"] for i in range(model.n_layers)])}
    save_checkpoint(path, {k: v for k, v in ckpt.items() if k not in ("format", "version")})
    with pytest.raises(GlassboxError, match="earlier Glassbox.*--force"):
        train_transcoders(tiny_config(corpus), tmp_path, model=model, evaluate=False, resume=True)


@pytest.mark.parametrize("overrides,message", [
    (dict(tokens=None), "exactly one"),
    (dict(budget_s=60.0), "exactly one"),
    (dict(activation="gelu"), "unknown activation"),
    (dict(k=30), "k must be"),
    (dict(e2e_frac=1.5), "e2e_frac"),
    (dict(splice_target="clean"), "hook_mlp_out"),
    (dict(aux_rows=-1), "aux_rows"),
])
def test_bad_options_are_clear_errors(corpus, overrides, message):
    with pytest.raises(GlassboxError, match=message):
        tiny_config(corpus, **overrides).validate()


@pytest.mark.parametrize("max_rows", [None, 7])
def test_aux_k_loss_equals_a_direct_computation(max_rows):
    """AuxK: the top aux_k dead features (ReLU) reconstruct the residual; with max_rows, on every
    n-th row only. Gradients reach the dead features' encoder rows and nothing else."""
    from glassbox.training.losses import aux_k_loss
    from glassbox.training.stack import TranscoderStack

    torch.manual_seed(0)
    stack = TranscoderStack(n_layers=2, d_model=8, n_features=32, activation="topk", k=4, skip=True, seed=0)
    x, residual = torch.randn(20, 8), torch.randn(20, 8)
    dead = torch.zeros(32, dtype=torch.bool)
    dead[[1, 5, 9, 20, 31]] = True
    loss = aux_k_loss(stack, 1, x, residual, dead, aux_k=3, compute_dtype=torch.float32, max_rows=max_rows)
    loss.backward()

    rows = torch.arange(20) if max_rows is None else torch.arange(0, 20, 3)  # ceil(20 / 7) = 3
    idx = dead.nonzero().squeeze(-1)
    with torch.no_grad():
        pre = x[rows] @ stack.W_enc[1][idx].T + stack.b_enc[1][idx]
        vals, local = pre.topk(3, dim=-1)
        recon = (vals.clamp(min=0)[..., None] * stack.W_dec[1][idx][local]).sum(1)
        r = residual[rows]
        expected = (recon - r).pow(2).sum() / (r - r.mean(0)).pow(2).sum()
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-5)
    touched = stack.W_enc[1].grad.abs().sum(-1).nonzero().squeeze(-1)
    assert set(touched.tolist()) <= set(idx.tolist()) and touched.numel() > 0
    assert stack.W_enc[0].grad is None


def test_budget_and_count_parsing():
    assert parse_duration("15m") == 900 and parse_duration("2h") == 7200 and parse_duration("90") == 90
    assert parse_count("2M") == 2_000_000 and parse_count("500k") == 500_000
    with pytest.raises(GlassboxError):
        parse_duration("soon")


def test_time_budget_stops_near_the_budget(model, corpus, tmp_path):
    cfg = tiny_config(corpus, tokens=None, budget_s=3.0)
    result = Trainer(cfg, model, tmp_path).run()
    assert result.finished and result.state.plan.e2e_steps > 0
    assert 1.5 < result.state.elapsed_s < 6.0


def test_train_command_end_to_end(corpus, tmp_path):
    from typer.testing import CliRunner

    from glassbox.cli import app
    from glassbox.testing import make_tiny_model_dir

    model_dir = make_tiny_model_dir(tmp_path / "model", "gemma3")
    out = tmp_path / "set"
    base = ["transcoders", "train", "-m", str(model_dir), "-c", str(corpus), "-o", str(out),
            "--features", "40", "--k", "4", "--tokens", "1200", "--batch-size", "8", "--seq-len", "16",
            "--dtype", "float32", "--no-graphs", "-q"]
    stopped = CliRunner().invoke(app, base + ["--stop-after-steps", "3"])
    assert stopped.exit_code == 0, stopped.output
    assert "--resume" in stopped.output and (out / "checkpoint.pt").is_file()
    again = CliRunner().invoke(app, base)
    assert again.exit_code == 2 and "--resume" in again.output
    done = CliRunner().invoke(app, base + ["--resume"])
    assert done.exit_code == 0, done.output
    assert "CE loss recovered" in done.output and "| layer | FVU |" in done.output
    assert load_transcoders(out).d_transcoder == 40
    bad = CliRunner().invoke(app, base[:-1] + ["--budget", "1m", "--force"])
    assert bad.exit_code == 2 and "exactly one" in bad.output


def test_a_run_past_its_time_budget_plans_no_more_steps():
    from glassbox.training.schedule import Plan, replan_e2e, replan_local

    plan = Plan(100, 10, False, False)
    assert replan_local(plan, step=40, seconds_left_local=-5.0, s_per_step=1.0).local_steps == 40
    assert replan_local(plan, step=40, seconds_left_local=10.0, s_per_step=1.0).local_steps == 50
    assert replan_e2e(plan, e2e_done=7, seconds_left=-1.0, s_per_step=1.0).e2e_steps == 7
    assert replan_e2e(plan, e2e_done=7, seconds_left=3.0, s_per_step=1.0).e2e_steps == 10


def test_training_lowers_the_loss_on_held_out_text(model, tmp_path):
    """More training lowers the reconstruction loss (FVU) on text from another corpus than the training one.
    (CE on a random tiny model is near uniform and says little; the demo-model evals measure CE.)"""
    from glassbox.training.evaluate import corpus_metrics

    train_corpus = write_tiny_corpus(tmp_path / "train", n_docs=300, seed=1)
    heldout = write_tiny_corpus(tmp_path / "heldout", n_docs=200, seed=99)
    results = {}
    for tokens in (120, 2400):
        cfg = tiny_config(train_corpus, tokens=tokens, splice_max=0.0, e2e_frac=0.0)
        out = train_transcoders(cfg, tmp_path / f"set-{tokens}", model=model, evaluate=False)
        dense = DenseTranscoders(load_transcoders(out.folder), model.device)
        results[tokens] = corpus_metrics(model, dense, str(heldout), fvu_tokens=300, ce_tokens=300,
                                         seq_len=16, batch_size=8, seed=5, report=lambda *a: None,
                                         split="all")
    short, long = results[120], results[2400]
    assert long["mean_fvu"] < 0.9 * short["mean_fvu"], (short["mean_fvu"], long["mean_fvu"])

"""Transcoder sets: circuit-tracer layout round trips, lazy decoders, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from _fake_hub import FakeHub
from safetensors.torch import load_file, save_file

from glassbox.errors import TranscoderError
from glassbox.testing import make_random_transcoders, make_tiny_model
from glassbox.transcoders import hub, load_transcoders, save_transcoders
from glassbox.transcoders.lazy import LazyRows


@pytest.fixture(scope="module")
def model():
    return make_tiny_model("llama")


@pytest.mark.parametrize("kind,activation,skip", [
    ("plt", "relu", True), ("plt", "jumprelu", False), ("plt", "topk", True),
    ("clt", "relu", False), ("clt", "jumprelu", True),
])
def test_save_load_round_trip(tmp_path, model, kind, activation, skip):
    tset = make_random_transcoders(model, kind=kind, activation=activation, skip=skip)
    save_transcoders(tset, tmp_path)
    loaded = load_transcoders(tmp_path)
    assert (loaded.kind, loaded.activation, loaded.k, loaded.has_skip) == (kind, activation, tset.k, skip)
    x = torch.randn(5, model.d_model)
    feats = torch.tensor([0, 3, 7])
    for layer in range(model.n_layers):
        torch.testing.assert_close(loaded.activate(layer, loaded.encode(layer, x)),
                                   tset.activate(layer, tset.encode(layer, x)))
        torch.testing.assert_close(loaded.decoder_rows(layer, feats), tset.decoder_rows(layer, feats))
        if skip:
            torch.testing.assert_close(loaded.skip(layer, x), tset.skip(layer, x))


def test_plt_skip_follows_circuit_tracer_convention(tmp_path, model):
    """circuit-tracer PLT files apply W_skip as x @ W_skip.T."""
    tset = make_random_transcoders(model, skip=True)
    save_transcoders(tset, tmp_path)
    raw = load_file(str(tmp_path / "layer_0.safetensors"))
    x = torch.randn(3, model.d_model)
    torch.testing.assert_close(tset.skip(0, x), x @ raw["W_skip"].T)


def test_topk_keeps_k_values_including_negatives(model):
    tset = make_random_transcoders(model, activation="topk", k=3)
    pre = -torch.rand(2, tset.d_transcoder) - 1  # all negative
    acts = tset.activate(0, pre)
    assert ((acts != 0).sum(-1) == 3).all()
    assert (acts <= 0).all()


def test_lazy_rows_read_only_requested_rows_in_bf16(tmp_path):
    t = torch.randn(100, 8).to(torch.bfloat16)
    save_file({"W_dec": t}, str(tmp_path / "x.safetensors"))
    lazy = LazyRows(tmp_path / "x.safetensors", "W_dec")
    idx = torch.tensor([5, 1, 99])
    got = lazy.rows(idx, dtype=torch.float32, device=torch.device("cpu"))
    torch.testing.assert_close(got, t[idx].float())
    assert lazy.shape == (100, 8)


def test_reference_set_loads(reference_transcoders_dir):
    tset = load_transcoders(reference_transcoders_dir)
    assert tset.n_layers == 18 and tset.d_transcoder == 2048 and tset.d_model == 640
    assert tset.activation == "topk" and tset.k == 32 and tset.has_skip
    assert tset.input_hook == "mlp.hook_in" and tset.output_hook == "hook_mlp_out"
    assert "gemma-3-270m" in tset.model_name


def _copy_set(model, tmp_path: Path, **kw) -> Path:
    return save_transcoders(make_random_transcoders(model, **kw), tmp_path / "set")


def test_missing_layer_file_is_reported(tmp_path, model):
    folder = _copy_set(model, tmp_path)
    (folder / "layer_1.safetensors").unlink()
    with pytest.raises(TranscoderError, match="missing transcoder file"):
        load_transcoders(folder)
    (folder / "config.yaml").unlink()
    (folder / "layer_2.safetensors").write_bytes((folder / "layer_0.safetensors").read_bytes())
    with pytest.raises(TranscoderError, match=r"missing layers \[1\]"):
        load_transcoders(folder)


def test_wrong_shapes_are_reported(tmp_path, model):
    folder = _copy_set(model, tmp_path)
    sd = load_file(str(folder / "layer_1.safetensors"))
    sd["W_dec"] = sd["W_dec"][:, :5].contiguous()
    save_file(sd, str(folder / "layer_1.safetensors"))
    with pytest.raises(TranscoderError, match="layer 1: W_dec has shape"):
        load_transcoders(folder)


def test_missing_tensor_and_corrupt_file(tmp_path, model):
    folder = _copy_set(model, tmp_path)
    sd = load_file(str(folder / "layer_0.safetensors"))
    del sd["b_enc"]
    save_file(sd, str(folder / "layer_0.safetensors"))
    with pytest.raises(TranscoderError, match="lacks tensor 'b_enc'"):
        load_transcoders(folder)
    (folder / "layer_0.safetensors").write_bytes(b"garbage")
    with pytest.raises(TranscoderError, match="cannot read|not a safetensors"):
        load_transcoders(folder)


def test_transcoders_for_a_different_width_model_are_refused(tmp_path, model):
    other = make_tiny_model("llama")
    tset = make_random_transcoders(other)
    from glassbox.transcoders.base import LayerWeights, TranscoderSet
    from glassbox.transcoders.lazy import DenseRows

    wide = TranscoderSet([LayerWeights(W_enc=torch.zeros(4, 32), b_enc=torch.zeros(4),
                                       W_dec=DenseRows(torch.zeros(4, 32)), b_dec=torch.zeros(32))
                          for _ in range(model.n_layers)], kind="plt", activation="relu")
    with pytest.raises(TranscoderError, match="width 32"):
        wide.check_compatible(model)
    tset.check_compatible(model)  # same shapes: fine


def test_bad_config_values(tmp_path, model):
    folder = _copy_set(model, tmp_path)
    cfg = yaml.safe_load((folder / "config.yaml").read_text())
    cfg["feature_input_hook"] = "blocks.{layer}.attn.hook_z"
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(TranscoderError, match="unsupported input hook"):
        load_transcoders(folder)
    cfg["feature_input_hook"] = "blocks.{layer}.ln2.hook_normalized"
    cfg["activation"] = "gelu"
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(TranscoderError, match="unknown activation"):
        load_transcoders(folder)
    (folder / "config.yaml").write_text("model_kind: [unclosed")
    with pytest.raises(TranscoderError, match="YAML"):
        load_transcoders(folder)


def test_not_a_folder_nor_a_repo(tmp_path):
    with pytest.raises(TranscoderError, match="not found"):
        load_transcoders(tmp_path / "missing")
    with pytest.raises(TranscoderError, match="neither a folder nor a hub repo"):
        load_transcoders("not a repo id")


def test_hub_references():
    uri = hub.parse_hf_uri("hf://mntss/gemma-scope-transcoders/layer_0.safetensors?revision=abc")
    assert (uri.repo_id, uri.path, uri.revision) == (
        "mntss/gemma-scope-transcoders", "layer_0.safetensors", "abc")
    assert hub.parse_hf_uri("hf://org/repo/a/b.npz@v2") == hub.HubRef("org/repo", "a/b.npz", "v2")
    assert hub.parse_hub_ref("mwhanna/gemma-scope-2-1b-it/transcoder_all/width_16k@main") == hub.HubRef(
        "mwhanna/gemma-scope-2-1b-it", "transcoder_all/width_16k", "main")
    assert hub.parse_hub_ref("gemma") == hub.HubRef("mwhanna/gemma-scope-transcoders")
    assert hub.parse_hub_ref("llama") == hub.HubRef("mntss/transcoder-Llama-3.2-1B")
    for bad in ("https://example.org/x", "hf://org/repo"):
        with pytest.raises(TranscoderError):
            hub.parse_hf_uri(bad)
    with pytest.raises(TranscoderError, match="neither a folder nor a hub repo"):
        hub.parse_hub_ref("org/../etc")


def test_hub_repo_is_loaded_through_the_hub_client(tmp_path, model, monkeypatch):
    """The hub path: list the repo, download config and files (here from a local stand-in)."""
    monkeypatch.setenv("GLASSBOX_HOME", str(tmp_path / "home"))
    fake = FakeHub(tmp_path / "hub").install(monkeypatch)
    fake.add_folder("someorg/clt-tiny", _copy_set(model, tmp_path, kind="clt", activation="jumprelu"),
                    revision="v1")
    tset = load_transcoders("someorg/clt-tiny@v1", progress=False)
    assert tset.kind == "clt" and tset.activation == "jumprelu"
    assert fake.calls[0] == ("list", "someorg/clt-tiny@v1")
    assert ("get", "someorg/clt-tiny/W_dec_1.safetensors@v1") in fake.calls


def test_offline_hub_error_is_clear(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TranscoderError, match="Offline"):
        load_transcoders("someorg/does-not-exist")

"""Every per-layer layout circuit-tracer reads (and SAELens), from folders and from a local
stand-in for the hub: the same weights give the same set and the same graphs; conversion
into Glassbox's cache happens once, resumes after an interruption, and later loads are offline.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from _fake_hub import FakeHub
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import glassbox
from glassbox.errors import TranscoderError
from glassbox.testing import make_random_transcoders, make_tiny_model
from glassbox.transcoders import arrays, formats, load_transcoders, save_transcoders
from glassbox.transcoders.cache import CACHE_DIR
from glassbox.transcoders.io import GEMMA3_IT_PREFIX
from glassbox.transcoders.layouts import write_layout

PROMPT = "The capital of the state containing Dallas is"


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Path:
    """A fresh GLASSBOX_HOME per test, so every conversion starts from an empty cache."""
    monkeypatch.setenv("GLASSBOX_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def fake_hub(tmp_path, monkeypatch) -> FakeHub:
    return FakeHub(tmp_path / "hub").install(monkeypatch)


@pytest.fixture(scope="module", params=["gemma2", "gemma3"])
def model(request):
    return make_tiny_model(request.param)


@pytest.fixture(scope="module")
def gemma3():
    return make_tiny_model("gemma3")


# The layouts, and the kind of set each can hold.
GEMMASCOPE_SET = dict(activation="jumprelu", skip=False, input_hook="ln2.hook_normalized")
SKIP_SET = dict(activation="jumprelu", skip=True)
CLT_SET = dict(kind="clt", activation="jumprelu", skip=True)


def _set(model, seed: int = 0, **kw):
    tset = make_random_transcoders(model, seed=seed, **kw)
    tset.model_name = "test/tiny"
    return tset


def assert_same_set(got, want) -> None:
    assert (got.kind, got.activation, got.k, got.input_hook, got.output_hook) == (
        want.kind, want.activation, want.k, want.input_hook, want.output_hook)
    for a, b in zip(got.layers, want.layers, strict=True):
        for name in ("W_enc", "b_enc", "b_dec", "threshold", "skip"):
            x, y = getattr(a, name), getattr(b, name)
            assert (x is None) == (y is None), name
            if x is not None:
                assert torch.equal(x.cpu(), y.cpu()), name
        cpu = torch.device("cpu")
        assert torch.equal(a.W_dec.full(dtype=torch.float32, device=cpu),
                           b.W_dec.full(dtype=torch.float32, device=cpu))


def _graph(model, tset):
    return glassbox.attribute(PROMPT, model, tset, batch_size=16)


def assert_same_graph(g, h) -> None:
    assert g.input_tokens.tolist() == h.input_tokens.tolist()
    assert torch.equal(g.active_features, h.active_features)
    assert torch.equal(g.activation_values, h.activation_values)
    assert torch.equal(g.adjacency_matrix, h.adjacency_matrix)


# ---- local folders, every layout ----------------------------------------------------------

@pytest.mark.parametrize("layout,kw", [
    ("gemmascope", GEMMASCOPE_SET), ("gemmascope-2", SKIP_SET), ("gemmascope-2", CLT_SET),
    ("saelens", SKIP_SET), ("saelens", dict(activation="relu", skip=False)),
])
@pytest.mark.parametrize("config", [True, False])
def test_native_layouts_give_back_the_same_set(tmp_path, gemma3, layout, kw, config):
    tset = _set(gemma3, **kw)
    folder = write_layout(tset, tmp_path / "set", layout, config=config)
    loaded = load_transcoders(folder, progress=False)
    assert_same_set(loaded, tset)
    assert loaded.model_name == ("test/tiny" if config or layout == "saelens" else "")
    # the cache holds circuit-tracer's layout, which loads in place
    cached = next((tmp_path / "home" / CACHE_DIR).iterdir())
    assert_same_set(load_transcoders(cached), tset)


def test_same_graph_from_every_layout(tmp_path, model):
    """Glassbox's graphs from one set of weights written in each layout are identical."""
    for i, (kw, layouts) in enumerate([(GEMMASCOPE_SET, ["gemmascope"]),
                                       (SKIP_SET, ["gemmascope-2", "saelens"]),
                                       (CLT_SET, ["gemmascope-2"])]):
        tset = _set(model, seed=i, **kw)
        reference = _graph(model, load_transcoders(save_transcoders(tset, tmp_path / f"ct{i}")))
        assert reference.n_selected > 0
        for layout in layouts:
            folder = save_transcoders(tset, tmp_path / f"{layout}{i}", layout=layout)
            assert_same_graph(_graph(model, load_transcoders(folder, progress=False)), reference)


def test_gemmascope_folder_without_config_uses_its_hooks(tmp_path, gemma3):
    """GemmaScope reads the normalised MLP input before its gain (ln2.hook_normalized)."""
    tset = _set(gemma3, **GEMMASCOPE_SET)
    loaded = load_transcoders(write_layout(tset, tmp_path / "gs", "gemmascope", config=False))
    assert (loaded.input_hook, loaded.output_hook) == ("ln2.hook_normalized", "hook_mlp_out")
    tset2 = _set(gemma3, **SKIP_SET)
    loaded2 = load_transcoders(write_layout(tset2, tmp_path / "gs2", "gemmascope-2", config=False))
    assert (loaded2.input_hook, loaded2.output_hook) == ("mlp.hook_in", "hook_mlp_out")


def test_npz_compressed_and_fortran_order_members(tmp_path, gemma3):
    """.npz members that cannot be memory-mapped (compressed) or are stored transposed
    (Fortran order) read the same."""
    tset = _set(gemma3, **GEMMASCOPE_SET)
    folder = write_layout(tset, tmp_path / "set", "gemmascope")
    for i, lw in enumerate(tset.layers):
        path = next(folder.glob(f"layer_{i}/**/params.npz"))
        arrs = dict(np.load(path))
        arrs["W_enc"] = np.asfortranarray(lw.W_enc.T.numpy())
        (np.savez_compressed if i == 0 else np.savez)(path, **arrs)
    with zipfile.ZipFile(next(folder.glob("layer_0/**/params.npz"))) as zf:
        assert zf.getinfo("W_enc.npy").compress_type == zipfile.ZIP_DEFLATED
    assert_same_set(load_transcoders(folder), tset)


def test_streamed_safetensors_in_small_blocks(tmp_path, monkeypatch):
    """Block-by-block writing (here 64-byte blocks) gives a file safetensors reads exactly."""
    monkeypatch.setattr(arrays, "BLOCK_BYTES", 64)
    src = tmp_path / "src.safetensors"
    values = {"a": torch.randn(7, 5), "b": torch.randn(3, 4, 2).to(torch.bfloat16),
              "c": torch.randn(9).half()}
    save_file(values, str(src))
    stored = arrays.safetensors_arrays(src)
    out = tmp_path / "out.safetensors"
    tail = (slice(None), slice(1, None))
    arrays.write_safetensors(out, [arrays.out_tensor("a_t", stored["a"], transpose=True),
                                   arrays.out_tensor("b_tail", stored["b"], index=tail),
                                   arrays.out_tensor("c", stored["c"])])
    got = load_file(str(out))
    assert torch.equal(got["a_t"], values["a"].T)
    assert torch.equal(got["b_tail"], values["b"][:, 1:])
    assert torch.equal(got["c"], values["c"])
    with safe_open(str(out), framework="pt") as f:
        assert f.get_slice("a_t")[2:4].shape == (2, 7)


def test_saelens_jumprelu_gate_becomes_circuit_tracers(tmp_path, gemma3):
    """SAELens gates relu(z) * (z > t): a negative threshold acts as 0."""
    tset = _set(gemma3, **SKIP_SET)
    folder = write_layout(tset, tmp_path / "sl", "saelens")
    weights = folder / "layer_0" / "sae_weights.safetensors"
    sd = load_file(str(weights))
    sd["threshold"][:5] = -1.0
    save_file(sd, str(weights))
    loaded = load_transcoders(folder)
    assert (loaded.layers[0].threshold[:5] == 0).all()
    z = loaded.encode(0, torch.randn(6, gemma3.d_model))
    want = torch.relu(z) * (z > sd["threshold"])
    assert torch.equal(loaded.activate(0, z), want)


def test_editing_a_local_folder_converts_it_again(tmp_path, gemma3):
    folder = write_layout(_set(gemma3, **SKIP_SET), tmp_path / "set", "gemmascope-2")
    load_transcoders(folder)
    other = _set(gemma3, seed=5, **SKIP_SET)
    write_layout(other, folder, "gemmascope-2")
    assert_same_set(load_transcoders(folder), other)


def test_clear_errors_for_bad_native_files(tmp_path, gemma3):
    folder = write_layout(_set(gemma3, **SKIP_SET), tmp_path / "gs2", "gemmascope-2")
    path = next(folder.glob("transcoder_all/layer_1_*/params.safetensors"))
    sd = load_file(str(path))
    del sd["threshold"]
    save_file(sd, str(path))
    with pytest.raises(TranscoderError, match="lacks tensor 'threshold'"):
        load_transcoders(folder)

    sl = write_layout(_set(gemma3, **SKIP_SET), tmp_path / "sl", "saelens")
    cfg = json.loads((sl / "layer_1" / "cfg.json").read_text())
    (sl / "layer_1" / "cfg.json").write_text(json.dumps({**cfg, "architecture": "standard"}))
    with pytest.raises(TranscoderError, match="not a transcoder"):
        load_transcoders(sl)

    odd = tmp_path / "odd"
    odd.mkdir()
    save_file({"something": torch.zeros(2)}, str(odd / "layer_0.safetensors"))
    with pytest.raises(TranscoderError, match="not a transcoder file in a layout"):
        load_transcoders(odd)


def test_several_variants_per_layer_must_be_chosen(tmp_path, gemma3):
    folder = write_layout(_set(gemma3, **SKIP_SET), tmp_path / "gs2", "gemmascope-2", config=False)
    variant = next(folder.glob("transcoder_all/layer_0_*"))
    (variant.parent / "layer_0_width_16k_l0_big").mkdir()
    (variant.parent / "layer_0_width_16k_l0_big" / "params.safetensors").write_bytes(
        (variant / "params.safetensors").read_bytes())
    with pytest.raises(TranscoderError, match="several variants per layer"):
        load_transcoders(folder)


# ---- the hub (a local stand-in) -----------------------------------------------------------

def _config(files: list[str], *, kind: str = "transcoder_set", model_name: str = "test/tiny",
            hooks=("mlp.hook_in", "hook_mlp_out")) -> str:
    cfg = {"model_kind": kind, "model_name": model_name, "feature_input_hook": hooks[0],
           "feature_output_hook": hooks[1]}
    if files:
        cfg["transcoders"] = files
    return yaml.safe_dump(cfg, sort_keys=False)


def _gemmascope_repos(fake_hub: FakeHub, tset, tmp_path: Path) -> None:
    """circuit-tracer's `gemma` set: a config.yaml whose entries are GemmaScope .npz files in
    Google's repo (google/gemma-scope-2b-pt-transcoders/layer_i/width_16k/average_l0_N)."""
    native = write_layout(tset, tmp_path / "gs-native", "gemmascope", config=False)
    files = []
    for i in range(tset.n_layers):
        rel = f"layer_{i}/width_16k/average_l0_{40 + i}/params.npz"
        fake_hub.add_file("google/gemma-scope-2b-pt-transcoders", rel,
                          next(native.glob(f"layer_{i}/**/params.npz")).read_bytes())
        files.append(f"hf://google/gemma-scope-2b-pt-transcoders/{rel}")
    fake_hub.add_file("mwhanna/gemma-scope-transcoders", "config.yaml",
                      _config(files, hooks=("ln2.hook_normalized", "hook_mlp_out")))


def test_gemma_alias_then_offline(tmp_path, fake_hub, gemma3):
    tset = _set(gemma3, **GEMMASCOPE_SET)
    _gemmascope_repos(fake_hub, tset, tmp_path)
    loaded = load_transcoders("gemma", progress=False)
    assert_same_set(loaded, tset)
    assert loaded.name == "mwhanna/gemma-scope-transcoders"
    assert len(fake_hub.downloads()) == 1 + tset.n_layers  # config.yaml + one file per layer
    fake_hub.offline, fake_hub.calls = True, []
    again = load_transcoders("mwhanna/gemma-scope-transcoders", progress=False)
    assert_same_set(again, tset)
    assert fake_hub.calls == []


def test_llama_alias_links_circuit_tracer_files(tmp_path, fake_hub, gemma3, home):
    """Files already in circuit-tracer's layout are hard-linked into the cache, not copied."""
    tset = _set(gemma3, activation="relu", skip=True)
    folder = save_transcoders(tset, tmp_path / "ct")
    (folder / "config.yaml").write_text(_config([]))  # no `transcoders:` list: found by name
    fake_hub.add_folder("mntss/transcoder-Llama-3.2-1B", folder)
    loaded = load_transcoders("llama", progress=False)
    assert_same_set(loaded, tset)
    assert loaded.name == "mntss/transcoder-Llama-3.2-1B"
    cached = next((home / CACHE_DIR).glob("*/layer_0.safetensors"))
    assert cached.stat().st_ino == (fake_hub.repo_dir("mntss/transcoder-Llama-3.2-1B")
                                    / "layer_0.safetensors").stat().st_ino


def test_hf_uris_with_revisions_from_several_repos(tmp_path, fake_hub, gemma3):
    old, new = _set(gemma3, seed=1, **SKIP_SET), _set(gemma3, seed=2, **SKIP_SET)
    for tag, tset in (("main", old), ("v1", new)):
        folder = save_transcoders(tset, tmp_path / tag)
        fake_hub.add_file("org/a", "layer_0.safetensors", (folder / "layer_0.safetensors").read_bytes(),
                          revision=tag)
        fake_hub.add_file("org/b", "sub/layer_1.safetensors", (folder / "layer_1.safetensors").read_bytes(),
                          revision=None if tag == "main" else "abc123")
    fake_hub.add_file("org/mixed", "config.yaml", _config(
        ["hf://org/a/layer_0.safetensors?revision=v1", "hf://org/b/sub/layer_1.safetensors@abc123"]),
        revision="r2")
    fake_hub.add_file("org/mixed", "config.yaml", _config(
        ["hf://org/a/layer_0.safetensors", "hf://org/b/sub/layer_1.safetensors"]))
    assert_same_set(load_transcoders("org/mixed@r2", progress=False), new)
    assert_same_set(load_transcoders("hf://org/mixed", progress=False), old)
    assert "org/a/layer_0.safetensors@v1" in fake_hub.downloads()


def test_gemmascope_2_instruction_tuned_subfolder(tmp_path, fake_hub, gemma3):
    """mwhanna's GemmaScope-2 sets: a config.yaml in a subfolder pointing at Google's
    params.safetensors; the -it ones hold the chat template's first four tokens constant."""
    tset = _set(gemma3, **SKIP_SET)
    native = write_layout(tset, tmp_path / "gs2", "gemmascope-2", config=False)
    files = []
    for path in sorted(native.glob("transcoder_all/*/params.safetensors")):
        rel = path.relative_to(native).as_posix()
        fake_hub.add_file("google/gemma-scope-2-1b-it", rel, path.read_bytes())
        files.append(f"hf://google/gemma-scope-2-1b-it/{rel}")
    where = "transcoder_all/width_16k_l0_small_affine"
    fake_hub.add_file("mwhanna/gemma-scope-2-1b-it", f"{where}/config.yaml",
                      _config(files, model_name="google/gemma-3-1b-it"))
    loaded = load_transcoders(f"mwhanna/gemma-scope-2-1b-it/{where}", progress=False)
    assert_same_set(loaded, tset)
    assert loaded.ignored_prefix == GEMMA3_IT_PREFIX == (2, 105, 2364, 107)
    assert loaded.name == f"mwhanna/gemma-scope-2-1b-it//{where}"
    pt = load_transcoders(save_transcoders(tset, tmp_path / "pt"))
    assert pt.ignored_prefix == ()
    # the positions attribution holds constant: the chat prefix, or else BOS
    special = {0, 1, 2}
    assert loaded.held_positions([2, 105, 2364, 107, 30, 31], special) == 4
    with pytest.raises(TranscoderError, match="must start with token ids"):
        loaded.held_positions([2, 30, 31], special)
    assert pt.held_positions([2, 30, 31], special) == 1
    assert pt.held_positions([30, 31], special) == 0


def test_native_hub_repo_without_config(tmp_path, fake_hub, gemma3):
    """Google's own GemmaScope-2 repo: the model is named by the repo, and a second variant
    per layer must be chosen."""
    tset = _set(gemma3, **SKIP_SET)
    native = write_layout(tset, tmp_path / "gs2", "gemmascope-2", config=False)
    fake_hub.add_folder("google/gemma-scope-2-270m-pt", native)
    loaded = load_transcoders("google/gemma-scope-2-270m-pt/transcoder_all", progress=False)
    assert_same_set(loaded, tset)
    assert loaded.model_name == "google/gemma-3-270m-pt" and loaded.ignored_prefix == ()
    fake_hub.add_folder("google/gemma-scope-2-270m-pt", native, revision="v2")
    fake_hub.add_file("google/gemma-scope-2-270m-pt",
                      "transcoder_all/layer_0_width_262k_l0_big/params.safetensors", b"", revision="v2")
    with pytest.raises(TranscoderError, match="several variants per layer"):
        load_transcoders("google/gemma-scope-2-270m-pt/transcoder_all@v2", progress=False)


def test_cross_layer_repos(tmp_path, fake_hub, gemma3):
    tset = _set(gemma3, **CLT_SET)
    fake_hub.add_folder("mntss/clt-tiny", save_transcoders(tset, tmp_path / "ct"))
    assert_same_set(load_transcoders("mntss/clt-tiny", progress=False), tset)
    native = write_layout(tset, tmp_path / "gs2", "gemmascope-2", config=False)
    fake_hub.add_folder("google/gemma-scope-2-270m-pt", native)
    files = [f"hf://google/gemma-scope-2-270m-pt/{p.relative_to(native).as_posix()}"
             for p in sorted(native.glob("clt/*/params.safetensors"))]
    fake_hub.add_file("mwhanna/gemma-scope-2-270m-pt", "clt/width_24/config.yaml",
                      _config(files, kind="cross_layer_transcoder"))
    loaded = load_transcoders("mwhanna/gemma-scope-2-270m-pt/clt/width_24", progress=False)
    assert loaded.kind == "clt"
    assert_same_set(loaded, tset)


def test_interrupted_download_resumes(tmp_path, fake_hub, gemma3, home):
    tset = _set(gemma3, **GEMMASCOPE_SET)
    _gemmascope_repos(fake_hub, tset, tmp_path)
    second = "layer_1/width_16k/average_l0_41/params.npz"
    fake_hub.fail_once.add(second)
    with pytest.raises(TranscoderError, match="connection reset"):
        load_transcoders("gemma", progress=False)
    entry = next((home / CACHE_DIR).iterdir())
    assert (entry / "layer_0.safetensors").is_file() and not (entry / "config.yaml").exists()
    assert_same_set(load_transcoders("gemma", progress=False), tset)
    fetched = [c for c in fake_hub.downloads() if "params.npz" in c]
    assert sorted(fetched) == sorted([f"google/gemma-scope-2b-pt-transcoders/{r}@main" for r in (
        "layer_0/width_16k/average_l0_40/params.npz", second, second)])  # layer 0 fetched once


def test_interrupted_conversion_resumes(tmp_path, fake_hub, gemma3, home, monkeypatch):
    """A conversion killed while writing leaves only a .partial file, which the next run replaces."""
    tset = _set(gemma3, **GEMMASCOPE_SET)
    _gemmascope_repos(fake_hub, tset, tmp_path)
    real = formats.write_safetensors
    calls = []

    def crash_on_second(path, tensors, metadata=None):
        calls.append(path)
        if len(calls) == 2:
            path.write_bytes(b"half a file")
            raise KeyboardInterrupt
        real(path, tensors, metadata)

    monkeypatch.setattr(formats, "write_safetensors", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        load_transcoders("gemma", progress=False)
    entry = next((home / CACHE_DIR).iterdir())
    assert sorted(p.name for p in entry.iterdir() if p.suffix != ".json" and p.name != ".lock") == [
        "layer_0.safetensors", "layer_1.safetensors.partial"]
    monkeypatch.setattr(formats, "write_safetensors", real)
    assert_same_set(load_transcoders("gemma", progress=False), tset)
    assert not list(entry.glob("*.partial"))


def test_local_config_mixing_local_files_and_hf_uris(tmp_path, fake_hub, gemma3):
    """A local config.yaml may list its own files and hub files; once converted, it loads
    offline, and editing the config converts it again."""
    a, b = _set(gemma3, seed=1, **SKIP_SET), _set(gemma3, seed=2, **SKIP_SET)
    fa, fb = save_transcoders(a, tmp_path / "a"), save_transcoders(b, tmp_path / "b")
    fake_hub.add_file("org/b", "layer_1.safetensors", (fb / "layer_1.safetensors").read_bytes())
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "layer_0.safetensors").write_bytes((fa / "layer_0.safetensors").read_bytes())
    (mixed / "config.yaml").write_text(_config(["layer_0.safetensors", "hf://org/b/layer_1.safetensors"]))
    loaded = load_transcoders(mixed, progress=False)
    assert torch.equal(loaded.layers[0].W_enc, a.layers[0].W_enc)
    assert torch.equal(loaded.layers[1].W_enc, b.layers[1].W_enc)
    fake_hub.offline = True
    assert torch.equal(load_transcoders(mixed).layers[1].W_enc, b.layers[1].W_enc)
    fake_hub.offline = False
    fake_hub.add_file("org/b", "layer_1.safetensors", (fa / "layer_1.safetensors").read_bytes(),
                      revision="v2")
    (mixed / "config.yaml").write_text(_config(["layer_0.safetensors", "hf://org/b/layer_1.safetensors@v2"]))
    assert_same_set(load_transcoders(mixed, progress=False), a)


def test_refresh_follows_a_moving_branch(tmp_path, fake_hub, gemma3):
    a, b = _set(gemma3, seed=1, **SKIP_SET), _set(gemma3, seed=2, **SKIP_SET)
    fake_hub.add_folder("org/moving", save_transcoders(a, tmp_path / "a"))
    assert_same_set(load_transcoders("org/moving", progress=False), a)
    fake_hub.add_folder("org/moving", save_transcoders(b, tmp_path / "b"))
    assert_same_set(load_transcoders("org/moving", progress=False), a)  # converted once
    assert_same_set(load_transcoders("org/moving", progress=False, refresh=True), b)

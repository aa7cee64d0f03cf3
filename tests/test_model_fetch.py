"""Fetching a model and a transcoder set with progress before registering them
(glassbox/models/fetch.py, glassbox/transcoders/fetch.py). The hub is a local stand-in: the
transcoder fake hub (tests/_fake_hub.py), and the three model hub calls replaced below."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from _fake_hub import FakeHub

from glassbox.errors import ModelNotAvailableError, TranscoderError, UnsupportedArchitectureError
from glassbox.models import fetch
from glassbox.testing import make_random_transcoders_dir, make_tiny_model_dir
from glassbox.transcoders.fetch import fetch_transcoders


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fetch")
    model = make_tiny_model_dir(root / "model", "gemma3")
    return {"model": model, "tc": make_random_transcoders_dir(root / "tc", model)}


class ModelHub:
    """Serves one folder as hub repo `org/tiny`, reporting a download in four steps."""

    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.folder, self.snapshots = folder, 0
        monkeypatch.setattr(fetch, "hub_file", self.file)
        monkeypatch.setattr(fetch, "hub_listing", lambda repo: sorted(p.name for p in folder.iterdir()))
        monkeypatch.setattr(fetch, "hub_snapshot", self.snapshot)

    def file(self, repo_id: str, filename: str) -> Path:
        if repo_id != "org/tiny":
            raise ModelNotAvailableError(f"cannot fetch {filename} of model {repo_id!r}: 404 (fake)")
        return self.folder / filename

    def snapshot(self, repo_id: str, patterns: list[str], report) -> Path:
        self.snapshots += 1
        assert "*.safetensors" in patterns and "*.bin" not in patterns
        for step in (1, 2, 2, 3, 4):  # a repeated value must not be reported twice
            report(step / 4)
        return self.folder


def test_reference_kinds(tiny):
    assert fetch.reference_kind(str(tiny["model"])) == "folder"
    assert fetch.reference_kind("/no/such/folder") == "folder"  # fetch_model says it is missing
    assert fetch.reference_kind("gemma-3-270m") == "demo"
    assert fetch.reference_kind("google/gemma-2-2b") == "hub"
    assert fetch.reference_kind("./relative") == "folder"  # the app asks for absolute folders
    for bad in ("justaword", "a/b/c", "org/re po", "has space/x"):
        with pytest.raises(ModelNotAvailableError, match="neither a folder, a demo model"):
            fetch.reference_kind(bad)


def test_a_hub_model_is_checked_then_downloaded_with_progress(tiny, monkeypatch):
    hub = ModelHub(tiny["model"], monkeypatch)
    calls: list[tuple[str, float]] = []
    facts = fetch.fetch_model("org/tiny", progress=lambda phase, f: calls.append((phase, f)))
    assert (facts.name, facts.model_type, facts.n_layers, facts.d_model) == ("org/tiny", "gemma3_text", 2, 16)
    assert hub.snapshots == 1 and facts.path == tiny["model"]
    fractions = [f for _, f in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    downloading = [f for phase, f in calls if phase == "downloading the model"]
    assert downloading == pytest.approx([0.95 * k / 4 for k in (1, 2, 3, 4)])
    with pytest.raises(ModelNotAvailableError, match="404"):
        fetch.fetch_model("org/other")


def test_an_unsupported_architecture_fails_before_the_weights_download(tiny, tmp_path, monkeypatch):
    folder = tmp_path / "gpt"
    shutil.copytree(tiny["model"], folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "gpt2"}))
    hub = ModelHub(folder, monkeypatch)
    with pytest.raises(UnsupportedArchitectureError, match="'gpt2' is not supported"):
        fetch.fetch_model("org/tiny")
    assert hub.snapshots == 0


def test_weights_are_safetensors_where_there_are_any():
    both = ["config.json", "model.safetensors", "pytorch_model.bin"]
    assert fetch.weight_pattern(both, "o/r") == "*.safetensors"
    assert fetch.weight_pattern(["config.json", "sub/pytorch_model.bin"], "o/r") == "*.bin"
    with pytest.raises(ModelNotAvailableError, match="no .safetensors or .bin"):
        fetch.weight_pattern(["config.json", "model.gguf"], "o/r")


def test_the_download_bar_reports_fractions_and_prints_nothing(capsys):
    seen: list[float] = []
    bar = fetch._bar_class(seen.append)(total=200, unit="B", desc="Downloading bytes")
    bar.update(50)
    bar.update(150)
    bar.close()
    assert seen == [0.25, 1.0]
    assert capsys.readouterr() == ("", "")


def test_a_hub_set_is_downloaded_file_by_file_then_converted_once(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("GLASSBOX_HOME", str(tmp_path / "home"))
    hub = FakeHub(tmp_path / "hub").install(monkeypatch)
    hub.add_folder("org/tiny-tc", tiny["tc"])
    calls: list[tuple[str, float]] = []
    tset = fetch_transcoders("org/tiny-tc", progress=lambda phase, f: calls.append((phase, f)))
    assert (tset.n_layers, tset.d_model, str(tset.device)) == (2, 16, "cpu")
    phases = [phase for phase, _ in calls]
    assert "downloading transcoders: file 2 of 2" in phases and phases[-1] == "transcoders ready"
    assert [f for _, f in calls] == sorted(f for _, f in calls) and calls[-1][1] == 1.0

    hub.offline = True  # converted once: adding it again needs no hub
    assert fetch_transcoders("org/tiny-tc").n_layers == 2
    with pytest.raises(TranscoderError, match="offline"):
        fetch_transcoders("org/another-tc")

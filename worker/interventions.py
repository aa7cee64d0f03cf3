"""What a worker runs for an intervention job: the graph's prompt before and after feature edits.

The answer is plain JSON (stored in the job's `result`): the top next tokens of the clean and
of the edited model, a merged table of both (with the change of each token's probability),
and both greedy continuations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from worker.cache import ModelCache

ProgressFn = Callable[[str, float], None]


@dataclass(frozen=True)
class InterventionSpec:
    """Everything an intervention job needs, resolved from the job row when it starts."""

    prompt: str
    model_source: str
    transcoders_source: str
    interventions: list[dict[str, Any]] = field(default_factory=list)
    max_new_tokens: int = 20
    constrained: bool = False
    top_k: int = 10


def feature_edits(items: list[dict[str, Any]]) -> list[Any]:
    """API items ({layer, pos, feature, mode, value}) as the engine's FeatureEdits."""
    from glassbox.interventions import ablate, scale, set_feature

    edits = []
    for item in items:
        layer, pos, feature = int(item["layer"]), item.get("pos"), int(item["feature"])
        mode, value = item.get("mode", "set"), float(item.get("value", 0.0))
        if mode == "ablate":
            edits.append(ablate(layer, pos, feature))
        elif mode == "scale":
            edits.append(scale(layer, pos, feature, value))
        else:
            edits.append(set_feature(layer, pos, feature, value))
    return edits


def merged_rows(top: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per token in either top list: before-order first, then tokens new after."""
    rows: dict[int, dict[str, Any]] = {}
    for side in ("before", "after"):
        for rank, t in enumerate(top[side]):
            row = rows.setdefault(t["token_id"], {**t, "rank_before": None, "rank_after": None})
            row[f"rank_{side}"] = rank + 1
    for row in rows.values():
        row["delta"] = row["prob_after"] - row["prob_before"]
    return list(rows.values())


def run_interventions(cache: ModelCache, spec: InterventionSpec, progress: ProgressFn) -> dict[str, Any]:
    """Top next tokens and greedy continuations, before and after the edits."""
    from glassbox.replacement import ReplacementModel

    progress("loading model", 0.0)
    model = cache.model(spec.model_source)
    transcoders = cache.transcoders(spec.transcoders_source)
    replacement = ReplacementModel(model, transcoders)
    edits = feature_edits(spec.interventions)
    progress("next tokens", 0.2)
    top = replacement.top_next_tokens_before_after(
        spec.prompt, edits, spec.top_k, constrained=spec.constrained
    ).to_dict()
    progress("continuations", 0.5)
    before, after = replacement.generate_before_after(
        spec.prompt, edits, max_new_tokens=spec.max_new_tokens
    )
    progress("done", 1.0)
    return {
        "top_k": spec.top_k,
        "constrained": spec.constrained,
        "interventions": spec.interventions,
        "top_next": top,
        "rows": merged_rows(top),
        "continuation_before": before.to_dict(),
        "continuation_after": after.to_dict(),
    }

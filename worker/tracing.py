"""What a worker runs for a trace job, behind one small interface so tests can swap it.

`Tracer` is any callable `(spec, progress) -> TraceOutput`. `EngineTracer` is the real one: it
takes the model and transcoders from a `ModelCache` (loaded once per worker) and calls
`glassbox.trace`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from worker.cache import ModelCache
from worker.interventions import InterventionSpec, run_interventions

ProgressFn = Callable[[str, float], None]


@dataclass(frozen=True)
class TraceSpec:
    """Everything a trace needs, resolved from the job row when the job starts."""

    prompt: str
    model_name: str
    model_source: str
    transcoders_name: str
    transcoders_source: str
    slug: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TraceOutput:
    graph_json: dict[str, Any]
    replacement_score: float | None = None
    completeness_score: float | None = None
    # seconds per step (load, attribution, prune, export), for the job's log line
    timings: dict[str, float] = field(default_factory=dict)


class Tracer(Protocol):
    def __call__(self, spec: TraceSpec, progress: ProgressFn) -> TraceOutput: ...


class EngineTracer:
    """The production tracer: cached model and transcoders, then `glassbox.trace`."""

    def __init__(self, cache: ModelCache):
        self.cache = cache

    def __call__(self, spec: TraceSpec, progress: ProgressFn) -> TraceOutput:
        import glassbox
        from glassbox.attribution.targets import prompt_logit_difference

        progress("loading model", 0.0)
        t0 = time.perf_counter()
        model = self.cache.model(spec.model_source)
        transcoders = self.cache.transcoders(spec.transcoders_source)
        t_loaded = time.perf_counter()
        params = dict(spec.params)
        logit_diff = params.pop("logit_diff", None)
        if logit_diff is not None:
            params["targets"] = [
                prompt_logit_difference(model, spec.prompt, logit_diff["plus"], logit_diff["minus"])
            ]
        t_start = time.perf_counter()
        result = glassbox.trace(
            spec.prompt, model=model, transcoders=transcoders, progress=progress, **params
        )
        replacement, completeness = scores_of(result)
        t_traced = time.perf_counter()
        graph_json = result.to_json(slug=spec.slug, scan=spec.model_name)
        attribution = float(result.graph.metadata.get("seconds_total", t_traced - t_start))
        timings = {
            "load_s": t_loaded - t0,  # zero unless the model or transcoders were not loaded yet
            "attribution_s": attribution,
            "prune_s": max(t_traced - t_start - attribution, 0.0),  # pruning and scores
            "export_s": time.perf_counter() - t_traced,
        }
        return TraceOutput(graph_json, replacement, completeness, timings)

    def intervene(self, spec: InterventionSpec, progress: ProgressFn) -> dict[str, Any]:
        """Run an intervention job on the same cached model and transcoders."""
        return run_interventions(self.cache, spec, progress)


def scores_of(result: Any) -> tuple[float | None, float | None]:
    """(replacement, completeness) from a TraceResult's `.scores`, whatever its shape."""
    scores = getattr(result, "scores", None)
    if scores is None:
        return None, None
    if isinstance(scores, dict):
        return _float(scores.get("replacement")), _float(scores.get("completeness"))
    if hasattr(scores, "replacement"):
        return _float(scores.replacement), _float(getattr(scores, "completeness", None))
    replacement, completeness = scores
    return _float(replacement), _float(completeness)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)

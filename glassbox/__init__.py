"""Glassbox: exact attribution graphs for Hugging Face language models.

The public API is small and imported lazily, so `import glassbox` stays fast:

    model = glassbox.load_model("gemma-3-270m")
    transcoders = glassbox.load_transcoders("path/or/hub-id")
    graph = glassbox.attribute("The capital of Texas is", model, transcoders)
    graph = glassbox.trace("The capital of Texas is", model=..., transcoders=...)  # pruned, JSON-ready
"""

from __future__ import annotations

from glassbox._lazy import lazy_exports

__version__ = "0.1.0"

_LAZY = {
    "load_model": "glassbox.models",
    "load_transcoders": "glassbox.transcoders",
    "attribute": "glassbox.attribution",
    "trace": "glassbox.tracing",
    "TraceResult": "glassbox.tracing",
    "Graph": "glassbox.graph",
    "LogitTarget": "glassbox.graph",
    "ReplacementModel": "glassbox.replacement",
    "compare_graphs": "glassbox.compare",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_exports(__name__, _LAZY)

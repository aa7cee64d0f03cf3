"""Loading causal LMs and running them layer by layer.

Exports are lazy so that `glassbox models list` and the demo registry import without torch.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "ArchSpec": "glassbox.models.arch",
    "supported_architectures": "glassbox.models.arch",
    "LoadedModel": "glassbox.models.loaded",
    "load_model": "glassbox.models.loaded",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'glassbox.models' has no attribute {name!r}")

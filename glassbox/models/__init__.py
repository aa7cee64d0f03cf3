"""Loading causal LMs and running them layer by layer.

Exports are lazy so that `glassbox models list` and the demo registry import without torch.
"""

from __future__ import annotations

from glassbox._lazy import lazy_exports

_LAZY = {
    "ArchSpec": "glassbox.models.arch",
    "supported_architectures": "glassbox.models.arch",
    "has_chat_template": "glassbox.models.chat",
    "LoadedModel": "glassbox.models.loaded",
    "load_model": "glassbox.models.loaded",
}
__all__ = sorted(_LAZY)


__getattr__ = lazy_exports(__name__, _LAZY)

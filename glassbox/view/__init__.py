"""See attribution graphs without the web application: `glassbox view` and `show()`.

    glassbox view graph.json more.json --port 8080     # list page, then the viewer per graph
    result = glassbox.trace(...); result.show()         # the viewer inline in Jupyter

A read-only server from the standard library serves the same viewer as the application
(frontend/static), with feature dashboards from a features store when one is given.
"""

from __future__ import annotations

from glassbox._lazy import lazy_exports

_LAZY = {
    "Catalog": "glassbox.view.catalog",
    "ViewGraph": "glassbox.view.catalog",
    "ViewServer": "glassbox.view.server",
    "ViewerFrame": "glassbox.view.notebook",
    "show": "glassbox.view.notebook",
}

__all__ = sorted(_LAZY)

__getattr__ = lazy_exports(__name__, _LAZY)

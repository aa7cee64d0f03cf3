"""`show()`: a graph's viewer inline in Jupyter, from a view server in a background thread.

The first call starts one view server for the Python process (127.0.0.1, a free port); every
call adds its graph to it and returns a `ViewerFrame`, whose HTML is an iframe of that graph's
viewer page. Nothing comes from the internet: the page, D3 and the graph are served by the
kernel's own process. The browser showing the notebook must reach 127.0.0.1 of the kernel's
machine (a local Jupyter does; for a remote kernel, forward the port, see `shared_server`).
"""

from __future__ import annotations

import html
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glassbox.errors import GlassboxError
from glassbox.view.catalog import Catalog, ViewGraph, graph_files, read_graph_file
from glassbox.view.features import open_store
from glassbox.view.server import ViewServer

if TYPE_CHECKING:
    from glassbox.features.store import FeatureStore
    from glassbox.graph.graph import Graph
    from glassbox.tracing import TraceResult

PORT_ENV = "GLASSBOX_VIEW_PORT"  # a fixed port for show(), e.g. one forwarded from a remote kernel
DEFAULT_HEIGHT = 720

_lock = threading.Lock()
_server: ViewServer | None = None


@dataclass(frozen=True)
class ViewerFrame:
    """What `show()` returns: Jupyter displays it as an iframe of the viewer; elsewhere its
    repr is the page's address, to open in a browser."""

    url: str
    graph: ViewGraph
    height: int = DEFAULT_HEIGHT

    def _repr_html_(self) -> str:
        src = html.escape(self.url, quote=True)
        title = html.escape(f"Attribution graph: {self.graph.summary.prompt}", quote=True)
        return (f'<iframe src="{src}" title="{title}" width="100%" height="{int(self.height)}" '
                'style="border: 1px solid #d5d9e0; border-radius: 4px" loading="lazy"></iframe>')

    def __repr__(self) -> str:
        return f"<glassbox viewer of {self.graph.slug!r} at {self.url}>"


def shared_server() -> ViewServer:
    """The process's view server, started on first use (port $GLASSBOX_VIEW_PORT, else a free one)."""
    global _server
    with _lock:
        if _server is None:
            port = int(os.environ.get(PORT_ENV) or 0)
            _server = ViewServer(Catalog(), port=port).start()
        return _server


def show(
    graph: TraceResult | Graph | Mapping[str, Any] | str | Path,
    *,
    features: FeatureStore | str | Path | None = None,
    height: int = DEFAULT_HEIGHT,
    **export_options: Any,
) -> ViewerFrame:
    """Show a graph in the viewer: a trace result, a Graph, graph JSON (a dict), or a graph file.

    features: a features store (or its folder) whose dashboards and labels the feature nodes get.
    export_options: for results and Graphs, passed to `to_json`/`graph_to_json` (slug, thresholds...).
    """
    if height < 100:
        raise GlassboxError(f"height must be at least 100 pixels, got {height}")
    store = open_store(features)
    catalog = shared_server().catalog
    if isinstance(graph, str | Path):
        files = graph_files(Path(graph))
        added = [catalog.add(read_graph_file(f), source=str(f), features=store) for f in files]
        entry = added[0]
    else:
        entry = catalog.add_json(_graph_json(graph, export_options), source="show()", features=store)
    return ViewerFrame(url=shared_server().graph_url(entry, embed=True), graph=entry, height=height)


def _graph_json(graph: Any, export_options: dict[str, Any]) -> Mapping[str, Any]:
    """Graph JSON of a trace result, a Graph or a dict that already is graph JSON."""
    from glassbox.graph.graph import Graph
    from glassbox.tracing import TraceResult

    if isinstance(graph, TraceResult):
        return graph.to_json(**export_options)
    if isinstance(graph, Graph):
        from glassbox.graph.export import graph_to_json
        from glassbox.tracing import default_slug

        options = {"slug": default_slug(graph.input_string), **export_options}
        return graph_to_json(graph, **options)
    if isinstance(graph, Mapping):
        if export_options:
            raise GlassboxError(f"export options ({', '.join(export_options)}) apply to traced graphs, "
                                "not to graph JSON")
        return graph
    raise GlassboxError("show() takes a trace result, a Graph, graph JSON or a file, "
                        f"not {type(graph).__name__}")

"""The graphs a view server shows: graph JSON checked once, kept as bytes, listed by key.

Graph files come as Glassbox or circuit-tracer graph JSON (`.json`, `.json.gz`), saved graphs
(`.pt`, Glassbox's or circuit-tracer's), or folders: a folder in circuit-tracer's
`create_graph_files` layout (`graph-metadata.json` naming `{slug}.json` files) shows the graphs
it lists, any other folder every graph JSON in it.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glassbox.errors import GraphFormatError
from glassbox.graph.json_import import GraphSummary, graph_from_json, read_graph_bytes

if TYPE_CHECKING:
    from glassbox.features.store import FeatureStore

logger = logging.getLogger(__name__)

GRAPH_METADATA = "graph-metadata.json"  # circuit-tracer's list of the graphs in a folder
JSON_SUFFIXES = (".json", ".json.gz")
KEY_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ViewGraph:
    """One graph on the server. `data` is the graph JSON as served: UTF-8 JSON, gzip-compressed
    when `gzipped` (then sent as is, with Content-Encoding: gzip)."""

    key: str  # the graph's address on the server: /graph/{key}
    summary: GraphSummary
    slug: str
    source: str  # the file it came from, or what made it
    data: bytes
    gzipped: bool
    features: FeatureStore | None = None  # dashboards and labels for its feature nodes
    labelled: frozenset[str] = frozenset()  # feature nodes whose file gives a label (clerp)

    def listing(self) -> dict[str, Any]:
        """What the list page and its JSON twin show about the graph."""
        return {"key": self.key, "slug": self.slug, "prompt": self.summary.prompt, "scan": self.summary.scan,
                "nodes": self.summary.node_count, "links": self.summary.link_count, "source": self.source,
                "features": self.features is not None}

    def json_bytes(self) -> bytes:
        """The graph JSON, uncompressed."""
        return gzip.decompress(self.data) if self.gzipped else self.data


class Catalog:
    """Graphs by key, in the order added; safe to use from the server's threads."""

    def __init__(self) -> None:
        self._graphs: dict[str, ViewGraph] = {}
        self._lock = threading.Lock()

    def add(self, raw: bytes, *, source: str, features: FeatureStore | None = None) -> ViewGraph:
        """Check graph JSON (plain or gzip bytes) and list it under a key made from its slug."""
        data = read_graph_bytes(raw)
        imported = graph_from_json(data)
        summary = GraphSummary.of(imported)
        labelled = frozenset(n.node_id for n in imported.nodes if n.kind == "feature" and n.clerp.strip())
        slug = str(data["metadata"]["slug"])
        with self._lock:
            key = self._free_key(slug)
            graph = ViewGraph(key=key, summary=summary, slug=slug, source=source, data=raw,
                              gzipped=raw[:2] == b"\x1f\x8b", features=features, labelled=labelled)
            self._graphs[key] = graph
        logger.info("view: %s (%d nodes) from %s at /graph/%s", slug, summary.node_count, source, key)
        return graph

    def add_json(self, data: Mapping[str, Any], *, source: str,
                 features: FeatureStore | None = None) -> ViewGraph:
        """List a graph JSON dict (as `graph_to_json` returns it)."""
        from glassbox.graph.export import dumps_graph_json

        return self.add(dumps_graph_json(data), source=source, features=features)

    def add_paths(self, paths: Iterable[str | Path], *,
                  features: FeatureStore | None = None) -> list[ViewGraph]:
        """List every graph the paths name (files or folders, see the module docstring)."""
        added = []
        for path in paths:
            for file in graph_files(Path(path)):
                added.append(self.add(read_graph_file(file), source=str(file), features=features))
        return added

    def get(self, key: str) -> ViewGraph | None:
        with self._lock:
            return self._graphs.get(key)

    def graphs(self) -> list[ViewGraph]:
        with self._lock:
            return list(self._graphs.values())

    def _free_key(self, slug: str) -> str:
        base = KEY_CHARS.sub("-", slug).strip("-.")[:80] or "graph"
        key, n = base, 1
        while key in self._graphs:
            n += 1
            key = f"{base}-{n}"
        return key


# ---- files ------------------------------------------------------------------------------------


def graph_files(path: Path) -> list[Path]:
    """The graph files a path names: itself, or the graphs of a folder."""
    path = path.expanduser()
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise GraphFormatError(f"no graph file or folder at {path}")
    listing = path / GRAPH_METADATA
    if listing.is_file():
        return _listed_files(path, listing)
    files = sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(JSON_SUFFIXES))
    if not files:
        raise GraphFormatError(f"{path} holds no graph JSON (.json or .json.gz files)")
    return files


def _listed_files(folder: Path, listing: Path) -> list[Path]:
    """The `{slug}.json` files graph-metadata.json lists, in its order (circuit-tracer's layout)."""
    try:
        graphs = json.loads(listing.read_text(encoding="utf-8"))["graphs"]
        slugs = [str(g["slug"]) for g in graphs]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise GraphFormatError(f"{listing} is not a graph listing: {exc}") from exc
    files = []
    for slug in slugs:
        file = folder / f"{slug}.json"
        if file.parent != folder or not file.is_file():
            raise GraphFormatError(f"{listing} lists {slug!r} but {file.name} is not in {folder}")
        files.append(file)
    return files


def read_graph_file(path: Path) -> bytes:
    """Graph JSON bytes of a file: JSON and gzip JSON as they are, `.pt` graphs exported."""
    if path.suffix != ".pt":
        return path.read_bytes()
    from glassbox.graph.export import dumps_graph_json, graph_to_json
    from glassbox.graph.graph import Graph
    from glassbox.tracing import default_slug

    graph = Graph.load(path)
    return dumps_graph_json(graph_to_json(graph, slug=default_slug(graph.input_string or path.stem)))

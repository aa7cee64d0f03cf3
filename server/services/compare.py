"""Two stored graphs compared: shared transcoder features (glassbox.compare on the graphs
rebuilt from their JSON), or, for graphs that cannot be rebuilt, on their feature nodes."""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy.orm import Session

from glassbox.errors import GlassboxError
from server import graph_json
from server.errors import Unprocessable
from server.services.graphs import get_graph_data
from server.tables import GraphRecord

log = logging.getLogger(__name__)

SHOWN = 200  # features per column on the page


def _document(session: Session, record: GraphRecord) -> dict[str, Any]:
    return json.loads(graph_json.decompress(get_graph_data(session, record)))


def compare_records(session: Session, a: GraphRecord, b: GraphRecord) -> dict[str, Any]:
    """The comparison of graphs a and b as JSON (glassbox.compare's `Comparison.to_dict`)."""
    from glassbox.compare import compare_graphs
    from glassbox.graph.json_import import graph_from_json

    if a.transcoder_set_id and b.transcoder_set_id and a.transcoder_set_id != b.transcoder_set_id:
        raise Unprocessable("the graphs use different transcoder sets, so their features do not correspond")
    doc_a, doc_b = _document(session, a), _document(session, b)
    try:
        imported_a, imported_b = graph_from_json(doc_a), graph_from_json(doc_b)
    except GlassboxError as exc:
        raise Unprocessable(f"a stored graph could not be read: {exc}") from exc
    try:
        result = compare_graphs(imported_a.to_graph(), imported_b.to_graph()).to_dict()
        result["method"] = "influence"
        return result
    except GlassboxError as exc:
        log.info("comparing %s and %s on their nodes: %s", a.slug, b.slug, exc)
        return compare_nodes(imported_a.nodes, imported_b.nodes, prompt_a=a.prompt, prompt_b=b.prompt)


def _node_stats(nodes: list[Any]) -> dict[tuple[int, int], dict[str, Any]]:
    groups: dict[tuple[int, int], dict[str, Any]] = {}
    for n in nodes:
        if n.kind != "feature" or n.layer is None or n.index is None:
            continue
        empty = {"positions": set(), "influence": 0.0, "max_activation": 0.0}
        g = groups.setdefault((n.layer, n.index), empty)
        g["positions"].add(n.pos)
        g["influence"] += abs(n.influence or 0.0)
        g["max_activation"] = max(g["max_activation"], n.activation or 0.0)
    total = sum(g["influence"] for g in groups.values())
    return {
        (layer, feat): {
            "layer": layer,
            "feature": feat,
            "positions": sorted(g["positions"]),
            "influence": g["influence"],
            "share": g["influence"] / total if total > 0 else 0.0,
            "max_activation": g["max_activation"],
        }
        for (layer, feat), g in groups.items()
    }


def compare_nodes(nodes_a: list[Any], nodes_b: list[Any], *, prompt_a: str, prompt_b: str) -> dict[str, Any]:
    """The same shape as `Comparison.to_dict`, from the feature nodes alone."""
    a, b = _node_stats(nodes_a), _node_stats(nodes_b)

    def item(key: tuple[int, int]) -> dict[str, Any]:
        sa, sb = a.get(key), b.get(key)
        share_a, share_b = (sa or {}).get("share", 0.0), (sb or {}).get("share", 0.0)
        return {"layer": key[0], "feature": key[1], "in_both": sa is not None and sb is not None,
                "share_a": share_a, "share_b": share_b, "change": share_b - share_a, "a": sa, "b": sb}

    shared = sorted((item(k) for k in a.keys() & b.keys()), key=lambda c: -(c["share_a"] + c["share_b"]))
    only_a = sorted((item(k) for k in a.keys() - b.keys()), key=lambda c: -c["share_a"])
    only_b = sorted((item(k) for k in b.keys() - a.keys()), key=lambda c: -c["share_b"])
    every = shared + only_a + only_b
    top = sum(max(c["share_a"], c["share_b"]) for c in every)
    return {
        "prompt_a": prompt_a, "prompt_b": prompt_b,
        "n_shared": len(shared), "n_only_a": len(only_a), "n_only_b": len(only_b),
        "shared_share_a": sum(c["share_a"] for c in shared),
        "shared_share_b": sum(c["share_b"] for c in shared),
        "weighted_overlap": sum(min(c["share_a"], c["share_b"]) for c in every) / top if top > 0 else 0.0,
        "shared": shared, "only_a": only_a, "only_b": only_b,
        "method": "nodes",
    }


def columns(result: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each graph's features for the side-by-side view (shared ones flagged), largest share first."""
    col_a = sorted(result["shared"] + result["only_a"], key=lambda c: -c["share_a"])[:SHOWN]
    col_b = sorted(result["shared"] + result["only_b"], key=lambda c: -c["share_b"])[:SHOWN]
    return col_a, col_b

"""Attribution-graph JSON -> ImportedGraph (and a Graph where the nodes allow it).

Reads JSON written by Glassbox, circuit-tracer or Neuronpedia. The checks follow
graph-schema.json (required keys and types) and add what the schema cannot say: unique node
ids, links between known nodes, finite weights, positions inside the prompt, size limits.
The schema's per-item rules are checked by hand, so a graph with millions of links is
checked in one pass instead of through a generic validator.

Node kinds come from `feature_type`, never from the shape of the id: circuit-tracer names
errors "0_{layer}_{pos}", its fork "{layer}_-1_{pos}", Neuronpedia's other backends use yet
other ids.
"""

from __future__ import annotations

import json
import logging
import math
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from glassbox.errors import GraphFormatError, GraphTooLargeError
from glassbox.graph import neuronpedia as nf
from glassbox.graph.graph import Graph, LogitTarget

logger = logging.getLogger(__name__)

MAX_BYTES = 512 * 1024 * 1024  # Neuronpedia caps uploads at 100 MB; leave room for gzip ratios
MAX_NODES = 500_000
MAX_LINKS = 20_000_000
MAX_DENSE_NODES = 16_384
GZIP_MAGIC = b"\x1f\x8b"  # to_graph builds an N x N float32 adjacency: 1 GiB at this size

FEATURE_TYPES = {nf.FEATURE, "transcoder", "per layer transcoder", "unexplored node"}
ERROR_TYPES = {nf.ERROR}


@dataclass(frozen=True)
class ImportedNode:
    """One node of a graph JSON, classified.

    kind: 'feature' | 'error' | 'token' | 'logit' | 'other' (attention features, biases...).
    index: transcoder feature index (features), token id (tokens), vocab id (logits).
    """

    node_id: str
    kind: str
    feature_type: str
    layer: int | None
    pos: int
    index: int | None
    clerp: str
    activation: float | None = None
    influence: float | None = None
    token_prob: float | None = None
    token_str: str | None = None


@dataclass
class ImportedGraph:
    """A graph JSON as read: its metadata, viewer state, nodes and links (by node position)."""

    metadata: dict[str, Any]
    qparams: dict[str, Any]
    nodes: list[ImportedNode]
    link_sources: torch.Tensor  # (E,) long, positions in `nodes`
    link_targets: torch.Tensor  # (E,) long
    link_weights: torch.Tensor  # (E,) float32, A[target, source]
    _positions: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def slug(self) -> str:
        return str(self.metadata["slug"])

    @property
    def prompt_tokens(self) -> list[str]:
        return list(self.metadata["prompt_tokens"])

    def position(self, node_id: str) -> int:
        """Index of `node_id` in `nodes`."""
        try:
            return self._positions[node_id]
        except KeyError:
            raise GraphFormatError(f"no node {node_id!r} in graph {self.slug!r}") from None

    def links(self) -> dict[tuple[str, str], float]:
        """{(source_id, target_id): weight}."""
        ids = [n.node_id for n in self.nodes]
        return {
            (ids[s], ids[t]): w
            for s, t, w in zip(self.link_sources.tolist(), self.link_targets.tolist(),
                               self.link_weights.tolist(), strict=True)
        }

    def to_graph(self, *, max_nodes: int = MAX_DENSE_NODES) -> Graph:
        """The pruned graph as a Graph (features, the full error grid, tokens, logits).

        Influence, pruning and scores then work on it as on any graph; they describe the
        pruned graph, not the one it was pruned from.
        """
        return _to_graph(self, max_nodes=max_nodes)


# ---- entry points -------------------------------------------------------------------------


def graph_from_json(
    data: Mapping[str, Any] | str | bytes,
    *,
    max_nodes: int = MAX_NODES,
    max_links: int = MAX_LINKS,
) -> ImportedGraph:
    """Check and read a graph JSON (a parsed dict, or its text)."""
    if isinstance(data, str | bytes | bytearray):
        data = _parse(data)
    if not isinstance(data, Mapping):
        raise GraphFormatError(f"graph JSON must be an object, got {type(data).__name__}")
    _check_top(data)
    metadata = _check_metadata(data["metadata"])
    qparams = _check_qparams(data["qParams"])
    nodes = _read_nodes(data["nodes"], metadata, max_nodes=max_nodes)
    positions = {n.node_id: i for i, n in enumerate(nodes)}
    sources, targets, weights = _read_links(data["links"], positions, max_links=max_links)
    return ImportedGraph(dict(metadata), dict(qparams), nodes, sources, targets, weights, positions)


def load_graph_json(path: str | Path, *, max_bytes: int = MAX_BYTES, **limits: int) -> ImportedGraph:
    """Read a graph JSON file (.json or .json.gz)."""
    path = Path(path)
    if not path.is_file():
        raise GraphFormatError(f"graph JSON not found: {path}")
    if path.stat().st_size > max_bytes:
        raise GraphTooLargeError(f"{path} is larger than the {max_bytes} byte limit")
    return graph_from_json(read_graph_bytes(path.read_bytes(), max_bytes=max_bytes), **limits)


def read_graph_bytes(raw: bytes, *, max_bytes: int = MAX_BYTES) -> dict[str, Any]:
    """Bytes of a graph JSON, plain or gzip -> the parsed object. Decompression stops at
    `max_bytes`, so a small gzip bomb cannot expand in memory."""
    if raw[:2] == GZIP_MAGIC:
        raw = _gunzip(raw, max_bytes=max_bytes)
    if len(raw) > max_bytes:
        raise GraphTooLargeError(f"the graph JSON is {len(raw)} bytes; the limit is {max_bytes}")
    data = _parse(raw)
    if not isinstance(data, dict):
        raise GraphFormatError(f"graph JSON must be an object, got {type(data).__name__}")
    return data


@dataclass(frozen=True)
class GraphSummary:
    """What a graph store keeps beside the JSON, to list and search graphs without reading it."""

    prompt: str
    tokens: list[str]
    scan: str
    node_count: int
    link_count: int

    @classmethod
    def of(cls, graph: ImportedGraph) -> GraphSummary:
        meta = graph.metadata
        return cls(meta["prompt"], list(meta["prompt_tokens"]), meta["scan"], len(graph.nodes),
                   int(graph.link_weights.numel()))


def json_roundtrip(graph: Graph, **export_options: Any) -> ImportedGraph:
    """Export `graph`, serialise to text and read it back (what a viewer would receive)."""
    from glassbox.graph.export import dumps_graph_json, graph_to_json

    return graph_from_json(dumps_graph_json(graph_to_json(graph, **export_options)))


# ---- parsing and checks -------------------------------------------------------------------


def _reject_constant(name: str) -> float:
    raise GraphFormatError(f"graph JSON holds {name}, which is not valid JSON")


def _parse(text: str | bytes | bytearray) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GraphFormatError(f"not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise GraphFormatError("not valid JSON: nested too deeply") from exc


def _gunzip(raw: bytes, *, max_bytes: int) -> bytes:
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = decoder.decompress(raw, max_bytes + 1)
    except zlib.error as exc:
        raise GraphFormatError(f"cannot decompress graph JSON: {exc}") from exc
    if len(out) > max_bytes or decoder.unconsumed_tail:
        raise GraphTooLargeError(f"the graph JSON is over {max_bytes} bytes once decompressed")
    return out


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise GraphFormatError(message)


def _check_top(data: Mapping[str, Any]) -> None:
    missing = [k for k in ("metadata", "qParams", "nodes", "links") if k not in data]
    _require(not missing, f"graph JSON lacks {', '.join(missing)}")
    _require(isinstance(data["nodes"], list), "graph JSON 'nodes' must be an array")
    _require(isinstance(data["links"], list), "graph JSON 'links' must be an array")


def _check_metadata(metadata: Any) -> Mapping[str, Any]:
    _require(isinstance(metadata, Mapping), "graph JSON 'metadata' must be an object")
    for key in ("slug", "scan", "prompt"):
        _require(isinstance(metadata.get(key), str), f"metadata.{key} must be a string")
    tokens = metadata.get("prompt_tokens")
    _require(isinstance(tokens, list) and all(isinstance(t, str) for t in tokens),
             "metadata.prompt_tokens must be an array of strings")
    if "node_threshold" in metadata:
        _require(_is_number(metadata["node_threshold"]), "metadata.node_threshold must be a number")
    for key in ("feature_details", "info", "generation_settings", "pruning_settings"):
        if key in metadata:
            _require(isinstance(metadata[key], Mapping), f"metadata.{key} must be an object")
    return metadata


def _check_qparams(qparams: Any) -> Mapping[str, Any]:
    _require(isinstance(qparams, Mapping), "graph JSON 'qParams' must be an object")
    if "pinnedIds" in qparams:
        pinned = qparams["pinnedIds"]
        _require(isinstance(pinned, list) and all(isinstance(p, str) for p in pinned),
                 "qParams.pinnedIds must be an array of strings")
    if "supernodes" in qparams:
        _require(isinstance(qparams["supernodes"], list), "qParams.supernodes must be an array")
    for key in ("linkType", "clickedId", "sg_pos"):
        if key in qparams:
            _require(isinstance(qparams[key], str), f"qParams.{key} must be a string")
    return qparams


# ---- nodes --------------------------------------------------------------------------------


def _read_nodes(raw: list[Any], metadata: Mapping[str, Any], *, max_nodes: int) -> list[ImportedNode]:
    if len(raw) > max_nodes:
        raise GraphTooLargeError(f"graph has {len(raw)} nodes, more than the limit {max_nodes}")
    cantor_ids = metadata.get("schema_version") == 1
    nodes, seen = [], set()
    for i, item in enumerate(raw):
        _check_node(item, i)
        node = _classify(item, cantor_ids=cantor_ids)
        _require(node.node_id not in seen, f"node id {node.node_id!r} appears twice")
        seen.add(node.node_id)
        nodes.append(node)
    return nodes


def _check_node(item: Any, i: int) -> None:
    _require(isinstance(item, Mapping), f"nodes[{i}] must be an object")
    where = f"nodes[{i}] ({item.get('node_id', '?')!r})"
    for key in ("node_id", "feature_type", "jsNodeId", "clerp"):
        _require(isinstance(item.get(key), str), f"{where}: {key} must be a string")
    for key in ("feature", "layer", "ctx_idx"):
        _require(key in item, f"{where}: lacks {key}")
    _require(item["feature"] is None or _is_int(item["feature"]), f"{where}: feature must be an integer")
    _require(isinstance(item["layer"], str) or _is_int(item["layer"]), f"{where}: bad layer")
    _require(_is_int(item["ctx_idx"]), f"{where}: ctx_idx must be an integer")
    for key in ("influence", "activation"):
        value = item.get(key)
        _require(value is None or (_is_number(value) and math.isfinite(value)),
                 f"{where}: {key} must be a finite number or null")


def _int_layer(layer: str | int) -> int | None:
    if _is_int(layer):
        return int(layer)
    return int(layer) if re.fullmatch(r"-?\d+", layer.strip()) else None


def _classify(item: Mapping[str, Any], *, cantor_ids: bool) -> ImportedNode:
    node_id, feature_type = item["node_id"], item["feature_type"]
    layer, pos = _int_layer(item["layer"]), int(item["ctx_idx"])
    common = {"node_id": node_id, "feature_type": feature_type, "pos": pos, "clerp": item["clerp"],
              "influence": _opt_float(item.get("influence"))}
    if feature_type == nf.EMBEDDING:
        return ImportedNode(kind="token", layer=None, index=_token_id(node_id), **common)
    if feature_type == nf.LOGIT:
        token, prob = nf.parse_logit_clerp(item["clerp"])
        if _is_number(item.get("token_prob")):
            prob = float(item["token_prob"])
        vocab = item["feature"] if _is_int(item["feature"]) else _id_part(node_id, -2)
        return ImportedNode(kind="logit", layer=layer, index=vocab, token_prob=prob, token_str=token,
                            **common)
    if feature_type in ERROR_TYPES and layer is not None:
        return ImportedNode(kind="error", layer=layer, index=None, **common)
    if feature_type in FEATURE_TYPES and layer is not None:
        index = _feature_index(node_id, item["feature"], layer, cantor_ids=cantor_ids)
        return ImportedNode(kind="feature", layer=layer, index=index,
                            activation=_opt_float(item.get("activation")), **common)
    return ImportedNode(kind="other", layer=layer, index=None,
                        activation=_opt_float(item.get("activation")), **common)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _id_part(node_id: str, at: int) -> int | None:
    parts = node_id.split("_")
    try:
        return int(parts[at])
    except (IndexError, ValueError):
        return None


def _token_id(node_id: str) -> int | None:
    match = re.fullmatch(r"E_(-?\d+)_(\d+)", node_id)
    return int(match.group(1)) if match else None


def _feature_index(node_id: str, feature: int | None, layer: int, *, cantor_ids: bool) -> int:
    """Transcoder feature index: from "{layer}_{index}_{pos}" ids, else from the Cantor value."""
    match = re.fullmatch(r"(\d+)_(\d+)_(\d+)", node_id)
    if match and int(match.group(1)) == layer:
        index = int(match.group(2))
        if cantor_ids and feature is not None and feature != nf.cantor_pair(layer, index):
            raise GraphFormatError(f"node {node_id!r}: feature {feature} is not cantor({layer}, {index})")
        return index
    if feature is not None and feature >= 0:
        cantor_layer, index = nf.cantor_unpair(feature)
        if cantor_layer == layer:
            return index
    index = _id_part(node_id, -2)
    if index is None:
        raise GraphFormatError(f"cannot tell the feature index of node {node_id!r}")
    return index


# ---- links --------------------------------------------------------------------------------


def _read_links(
    raw: list[Any], positions: Mapping[str, int], *, max_links: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if len(raw) > max_links:
        raise GraphTooLargeError(f"graph has {len(raw)} links, more than the limit {max_links}")
    sources, targets, weights = [], [], []
    for i, link in enumerate(raw):
        if not isinstance(link, Mapping):
            raise GraphFormatError(f"links[{i}] must be an object")
        source, target, weight = link.get("source"), link.get("target"), link.get("weight")
        if source not in positions or target not in positions:
            _bad_link(i, source, target, positions)
        if not (_is_number(weight) and math.isfinite(weight)):
            raise GraphFormatError(f"links[{i}]: weight must be a finite number, got {weight!r}")
        sources.append(positions[source])
        targets.append(positions[target])
        weights.append(weight)
    return (torch.tensor(sources, dtype=torch.long), torch.tensor(targets, dtype=torch.long),
            torch.tensor(weights, dtype=torch.float32))


def _bad_link(i: int, source: Any, target: Any, positions: Mapping[str, int]) -> None:
    for name, value in (("source", source), ("target", target)):
        if not isinstance(value, str):
            raise GraphFormatError(f"links[{i}]: {name} must be a string node id")
        if value not in positions:
            raise GraphFormatError(f"links[{i}]: {name} {value!r} is not a node of the graph")


# ---- ImportedGraph -> Graph ---------------------------------------------------------------


def _to_graph(imported: ImportedGraph, *, max_nodes: int) -> Graph:
    others = sorted({n.feature_type for n in imported.nodes if n.kind == "other"})
    if others:
        raise GraphFormatError(f"nodes of type {', '.join(others)} have no place in a Glassbox Graph")
    section = imported.metadata.get("glassbox")
    section = section if isinstance(section, Mapping) else {}
    n_pos = len(imported.prompt_tokens)
    n_layers = _n_layers(imported, section)
    by_kind: dict[str, list[int]] = {"feature": [], "error": [], "token": [], "logit": []}
    for i, node in enumerate(imported.nodes):
        _require(0 <= node.pos < n_pos, f"node {node.node_id!r}: ctx_idx {node.pos} is outside the prompt")
        by_kind[node.kind].append(i)

    n_feat, n_logits = len(by_kind["feature"]), len(by_kind["logit"])
    _require(n_logits > 0, f"graph {imported.slug!r} has no logit nodes")
    n_nodes = n_feat + n_layers * n_pos + n_pos + n_logits
    _require(n_nodes <= max_nodes, f"graph needs {n_nodes} nodes, more than the dense limit {max_nodes}")

    order = torch.full((len(imported.nodes),), -1, dtype=torch.long)  # json position -> graph node
    for rank, i in enumerate(by_kind["feature"]):
        node = imported.nodes[i]
        _require(0 <= node.layer < n_layers, f"node {node.node_id!r}: layer {node.layer} out of range")
        order[i] = rank
    error_slots: set[int] = set()
    for i in by_kind["error"]:
        node = imported.nodes[i]
        _require(0 <= node.layer < n_layers, f"node {node.node_id!r}: layer {node.layer} out of range")
        slot = n_feat + node.layer * n_pos + node.pos
        _require(slot not in error_slots, f"two error nodes at layer {node.layer}, position {node.pos}")
        error_slots.add(slot)
        order[i] = slot
    token_positions: set[int] = set()
    for i in by_kind["token"]:
        pos = imported.nodes[i].pos
        _require(pos not in token_positions, f"two embedding nodes at position {pos}")
        token_positions.add(pos)
        order[i] = n_feat + n_layers * n_pos + pos
    for rank, i in enumerate(by_kind["logit"]):
        order[i] = n_feat + n_layers * n_pos + n_pos + rank

    rows, cols = order[imported.link_targets], order[imported.link_sources]
    _require(torch.unique(rows * n_nodes + cols).numel() == rows.numel(), "a link appears twice")
    adjacency = torch.zeros(n_nodes, n_nodes, dtype=torch.float32)
    adjacency[rows, cols] = imported.link_weights
    features = [imported.nodes[i] for i in by_kind["feature"]]
    logits = [imported.nodes[i] for i in by_kind["logit"]]
    return Graph(
        input_string=str(imported.metadata["prompt"]),
        input_tokens=_input_tokens(imported, by_kind["token"], section, n_pos),
        active_features=torch.tensor([[n.layer, n.pos, n.index] for n in features],
                                     dtype=torch.long).reshape(-1, 3),
        activation_values=torch.tensor([n.activation or 0.0 for n in features], dtype=torch.float32),
        selected_features=torch.arange(n_feat, dtype=torch.long),
        adjacency_matrix=adjacency,
        logit_targets=[LogitTarget(n.token_str or "", int(n.index if n.index is not None else -1))
                       for n in logits],
        logit_probabilities=torch.tensor([n.token_prob or 0.0 for n in logits], dtype=torch.float32),
        n_layers=n_layers,
        vocab_size=int(section.get("vocab_size") or 0),
        model_name=str(section.get("model_name") or imported.metadata.get("scan", "")),
        transcoder_name=str(section.get("transcoder_name") or ""),
        token_strings=imported.prompt_tokens,
        metadata={"imported_from": "graph-json", "slug": imported.slug, "pruned": True},
    )


def _n_layers(imported: ImportedGraph, section: Mapping[str, Any]) -> int:
    """From Glassbox's own metadata, else the highest feature/error layer + 1, else logits - 1."""
    if _is_int(section.get("n_layers")):
        return int(section["n_layers"])
    inner = [n.layer for n in imported.nodes if n.kind in ("feature", "error") and n.layer is not None]
    logit = [n.layer - 1 for n in imported.nodes if n.kind == "logit" and n.layer is not None]
    return max([0] + [layer + 1 for layer in inner] + logit)


def _input_tokens(imported: ImportedGraph, tokens: list[int], section: Mapping[str, Any], n_pos: int):
    """Token ids from the embedding node ids (-1 where a position has no node)."""
    stored = section.get("input_tokens")
    if isinstance(stored, list) and len(stored) == n_pos and all(_is_int(t) for t in stored):
        return torch.tensor(stored, dtype=torch.long)
    ids = torch.full((n_pos,), -1, dtype=torch.long)
    for i in tokens:
        node = imported.nodes[i]
        if node.index is not None:
            ids[node.pos] = node.index
    return ids

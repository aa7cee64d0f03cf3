"""Graph -> attribution-graph JSON, the format circuit-tracer writes and Neuronpedia and
Anthropic's viewer read (see glassbox/graph/schemas/graph-schema.json).

The export is the pruned graph: nodes kept by `prune_graph` that still touch a kept edge
(tokens and logits always), and the kept edges with their raw signed weight A[target, source].
Node order follows the graph ([features | errors | tokens | logits]); links run row-major over
(target, source), as circuit-tracer writes them. The output is deterministic (no timestamps),
so equal graphs give equal files.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from glassbox.errors import GlassboxError
from glassbox.graph import neuronpedia as nf
from glassbox.graph.graph import Graph
from glassbox.graph.prune import PruneResult, compute_graph_scores, node_influence, prune_graph

logger = logging.getLogger(__name__)

GENERATOR_NAME = "glassbox"
GLASSBOX_FORMAT_VERSION = 1
WEIGHT_DIGITS = 6  # link weights: relative error <= 5e-6; JSON ~12% and gzip ~35% smaller
GENERATION_KEYS = ("max_n_logits", "desired_logit_prob", "batch_size", "max_feature_nodes")


def graph_to_json(
    graph: Graph,
    *,
    slug: str,
    node_threshold: float = 0.8,
    edge_threshold: float = 0.98,
    feature_labels: Mapping[tuple[int, int], str] | None = None,
    scan: str | None = None,
    extra_metadata: Mapping[str, Any] | None = None,
    weight_digits: int | None = WEIGHT_DIGITS,
    include_scores: bool = True,
    pruned: PruneResult | None = None,
    scores: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """The pruned graph as a JSON-ready dict that validates against graph-schema.json.

    feature_labels: clerps for features, keyed by (layer, feature index).
    scan: the model id viewers group graphs by (default: graph.model_name).
    extra_metadata: merged (recursively) into `metadata` last, e.g. `feature_details`.
    weight_digits: significant digits kept in link weights; None keeps the float32 value.
    pruned, scores: `prune_graph(graph, node_threshold, edge_threshold)` and
    `compute_graph_scores(graph)` when the caller has them already (`glassbox.trace` does),
    so that influence over the whole graph is not computed again.
    """
    if not isinstance(slug, str) or not slug.strip():
        raise GlassboxError("graph_to_json needs a non-empty slug")
    influence = None
    if pruned is None or (include_scores and scores is None):
        influence = node_influence(graph)
    if pruned is None:
        pruned = prune_graph(graph, node_threshold, edge_threshold, influence=influence)
    tokens = token_strings(graph)
    nodes = _build_nodes(graph, pruned, tokens, feature_labels or {})
    links = _build_links(graph, pruned, nodes, weight_digits)
    used = _used_nodes(nodes, links)
    if not include_scores:
        scores = None
    elif scores is None:
        scores = compute_graph_scores(graph, influence=influence)
    metadata = _metadata(
        graph, slug=slug, scan=scan, tokens=tokens, scores=scores,
        pruning={"node_threshold": node_threshold, "edge_threshold": edge_threshold},
    )
    if extra_metadata:
        _deep_merge(metadata, _jsonable(dict(extra_metadata)))
    logger.info("exported graph %s: %d nodes, %d links", slug, len(used), len(links))
    return {"metadata": metadata, "qParams": nf.default_qparams(), "nodes": used, "links": links}


def dumps_graph_json(data: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON; refuses NaN/inf, which are not JSON."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8")


def save_graph_json(graph: Graph, path: str | Path, **export_options: Any) -> Path:
    """Write `graph_to_json(graph, **export_options)` to `path` (gzip when it ends in .gz)."""
    path = Path(path)
    raw = dumps_graph_json(graph_to_json(graph, **export_options))
    if path.suffix == ".gz":
        raw = gzip.compress(raw, compresslevel=6)
    path.write_bytes(raw)
    return path


# ---- circuit-tracer's folder layout ----------------------------------------------------------

GRAPH_METADATA = "graph-metadata.json"
# The metadata keys circuit-tracer's `create_graph_files` lists per graph (its viewer reads slug,
# scan, prompt and node_threshold from the list to build its graph menu).
LISTED_KEYS = ("slug", "scan", "transcoder_list", "prompt_tokens", "prompt", "node_threshold",
               "schema_version")


def write_graph_files(data: Mapping[str, Any], folder: str | Path) -> Path:
    """Write graph JSON in circuit-tracer's `create_graph_files` layout; returns the graph file.

    The folder gets `{slug}.json` and an entry in `graph-metadata.json` (`{"graphs": [...]}`,
    one entry per slug; writing a slug again replaces its entry), so circuit-tracer's `serve`,
    its viewer and `glassbox view FOLDER` open every graph written there.
    """
    metadata = data.get("metadata") if isinstance(data, Mapping) else None
    if not isinstance(metadata, Mapping) or not isinstance(metadata.get("slug"), str):
        raise GlassboxError("graph JSON needs metadata.slug to be written as graph files")
    slug = metadata["slug"]
    if not slug.strip() or slug in {".", ".."} or any(c in slug for c in "/\\\0"):
        raise GlassboxError(f"slug {slug!r} cannot be a file name: use letters, digits, - and _")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{slug}.json"
    _replace_file(path, dumps_graph_json(data))
    listing = _read_listing(folder / GRAPH_METADATA)
    entry = {key: metadata[key] for key in LISTED_KEYS if key in metadata}
    listing["graphs"] = [g for g in listing["graphs"] if g.get("slug") != slug] + [entry]
    _replace_file(folder / GRAPH_METADATA, json.dumps(listing, indent=2, ensure_ascii=False).encode())
    return path


def save_graph_files(graph: Graph, folder: str | Path, **export_options: Any) -> Path:
    """`write_graph_files(graph_to_json(graph, **export_options), folder)`."""
    return write_graph_files(graph_to_json(graph, **export_options), folder)


def _read_listing(path: Path) -> dict[str, Any]:
    """graph-metadata.json as {"graphs": [...]}; a missing file is an empty listing."""
    if not path.is_file():
        return {"graphs": []}
    try:
        listing = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GlassboxError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(listing, dict) or not isinstance(listing.get("graphs"), list):
        raise GlassboxError(f'{path} is not a graph listing ({{"graphs": [...]}})')
    listing["graphs"] = [g for g in listing["graphs"] if isinstance(g, dict)]
    return listing


def _replace_file(path: Path, raw: bytes) -> None:
    """Write through a temporary file, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(raw)
    tmp.replace(path)


def token_strings(graph: Graph) -> list[str]:
    """Display strings of the input tokens (the ids as text when the graph has none)."""
    if len(graph.token_strings) == graph.n_pos:
        return [str(t) for t in graph.token_strings]
    return [str(t) for t in graph.input_tokens.tolist()]


# ---- nodes --------------------------------------------------------------------------------


def _build_nodes(
    graph: Graph, pruned: PruneResult, tokens: list[str], labels: Mapping[tuple[int, int], str]
) -> dict[int, dict[str, Any]]:
    """node index -> node dict, for every node in the node mask, in node order."""
    cumulative = pruned.cumulative_scores.tolist()
    triples = graph.selected_feature_triples().tolist()  # (layer, pos, feature) per feature node
    activations = graph.activation_values[graph.selected_features].tolist()
    token_ids = graph.input_tokens.tolist()
    first_error, first_token, first_logit = graph.n_selected, graph.token_node(0), graph.logit_node(0)
    nodes: dict[int, dict[str, Any]] = {}
    for index in pruned.node_mask.nonzero().squeeze(1).tolist():
        if index < first_error:
            layer, pos, feature = triples[index]
            node = _feature_node(layer, pos, feature, activations[index], labels.get((layer, feature), ""))
        elif index < first_token:
            layer, pos = divmod(index - first_error, graph.n_pos)
            node = _error_node(layer, pos, tokens[pos])
        elif index < first_logit:
            pos = index - first_token
            node = _token_node(token_ids[pos], pos, tokens[pos])
        else:
            node = _logit_node(graph, index - first_logit)
        if node["feature_type"] != nf.LOGIT:
            node["influence"] = _finite_or_none(cumulative[index])
        nodes[index] = node
    return nodes


def _base_node(node_id: str, feature: int, layer: str, pos: int, feature_type: str, js_id: str) -> dict:
    return {
        "node_id": node_id,
        "feature": feature,
        "layer": layer,
        "ctx_idx": pos,
        "feature_type": feature_type,
        "token_prob": 0.0,
        "is_target_logit": False,
        "run_idx": 0,
        "reverse_ctx_idx": 0,
        "jsNodeId": js_id,
        "clerp": "",
        "influence": None,
        "activation": None,
    }


def _feature_node(layer: int, pos: int, feature: int, activation: float, clerp: str) -> dict:
    node = _base_node(nf.feature_node_id(layer, feature, pos), nf.cantor_pair(layer, feature),
                      str(layer), pos, nf.FEATURE, nf.feature_js_id(layer, feature))
    node["clerp"] = str(clerp)
    node["activation"] = _finite_or_none(activation)
    return node


def _error_node(layer: int, pos: int, token: str) -> dict:
    node = _base_node(nf.error_node_id(layer, pos), -1, str(layer), pos, nf.ERROR,
                      nf.error_js_id(layer, pos))
    node["clerp"] = nf.error_clerp(token)
    return node


def _token_node(token_id: int, pos: int, token: str) -> dict:
    node = _base_node(nf.token_node_id(token_id, pos), pos, nf.EMBEDDING_LAYER, pos, nf.EMBEDDING,
                      nf.token_js_id(token_id, pos))
    node["clerp"] = nf.embedding_clerp(token)
    return node


def _logit_node(graph: Graph, i: int) -> dict:
    target = graph.logit_targets[i]
    pos = graph.n_pos - 1
    prob = float(graph.logit_probabilities[i])
    node = _base_node(nf.logit_node_id(graph.n_layers, target.vocab_idx, pos), int(target.vocab_idx),
                      str(nf.logit_layer(graph.n_layers)), pos, nf.LOGIT,
                      nf.logit_js_id(target.vocab_idx, pos))
    node["token_prob"] = prob
    node["is_target_logit"] = i == 0
    node["clerp"] = nf.logit_clerp(target.token_str, prob)
    return node


def _used_nodes(nodes: dict[int, dict[str, Any]], links: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Nodes that touch a link, plus every token and logit (circuit-tracer's filter)."""
    connected = {link["source"] for link in links} | {link["target"] for link in links}
    always = (nf.EMBEDDING, nf.LOGIT)
    return [n for n in nodes.values() if n["node_id"] in connected or n["feature_type"] in always]


# ---- links --------------------------------------------------------------------------------


def _build_links(
    graph: Graph, pruned: PruneResult, nodes: dict[int, dict[str, Any]], weight_digits: int | None
) -> list[dict[str, Any]]:
    targets, sources = pruned.edge_mask.nonzero(as_tuple=True)  # row-major: by target, then source
    weights = gather_entries(graph.adjacency_matrix, targets, sources)
    values = round_significant(weights, weight_digits)
    links = []
    for target, source, weight in zip(targets.tolist(), sources.tolist(), values, strict=True):
        if source in nodes and target in nodes:
            links.append({"source": nodes[source]["node_id"], "target": nodes[target]["node_id"],
                          "weight": weight})
    return links


def gather_entries(adjacency: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """adjacency[rows, cols] for a dense or sparse (COO/CSR) matrix."""
    if adjacency.layout == torch.strided:
        return adjacency[rows, cols].float()
    coo = adjacency.to_sparse_coo().coalesce()
    n_cols = coo.shape[1]
    keys = coo.indices()[0] * n_cols + coo.indices()[1]  # sorted: coalesced COO is row-major
    wanted = rows * n_cols + cols
    at = torch.searchsorted(keys, wanted).clamp(max=max(keys.numel() - 1, 0))
    values = coo.values().float()
    if keys.numel() == 0:
        return torch.zeros(wanted.shape, dtype=torch.float32)
    return torch.where(keys[at] == wanted, values[at], torch.zeros((), dtype=values.dtype))


def round_significant(values: torch.Tensor, digits: int | None) -> list[float]:
    """Floats rounded to `digits` significant digits (they print short), or exact float32."""
    x = values.detach().cpu().double().numpy()
    if digits is None or x.size == 0:
        return x.tolist()
    if digits < 1:
        raise GlassboxError(f"weight_digits must be >= 1 or None, got {digits}")
    out = x.copy()  # zeros and non-finite values stay as they are
    nonzero = (x != 0) & np.isfinite(x)
    k = np.zeros_like(x)
    k[nonzero] = digits - 1 - np.floor(np.log10(np.abs(x[nonzero])))  # decimal places to keep
    exact = nonzero & (np.abs(k) <= 22)  # 10**k is an exact double: results print short
    scale = 10.0 ** np.abs(k[exact])
    out[exact] = np.where(k[exact] >= 0, np.round(x[exact] * scale) / scale,
                          np.round(x[exact] / scale) * scale)
    values_list = out.tolist()
    for i in np.flatnonzero(nonzero & ~exact).tolist():  # magnitudes beyond 1e+-16: rare
        values_list[i] = float(f"{x[i]:.{digits}g}")
    return values_list


# ---- metadata -----------------------------------------------------------------------------


def _metadata(
    graph: Graph,
    *,
    slug: str,
    scan: str | None,
    tokens: list[str],
    scores: tuple[float, float] | None,
    pruning: dict[str, float],
) -> dict[str, Any]:
    from glassbox import __version__

    metadata: dict[str, Any] = {
        "slug": slug,
        "scan": scan or graph.model_name or "unknown",
        "transcoder_list": [],
        "prompt_tokens": tokens,
        "prompt": graph.input_string,
        "node_threshold": pruning["node_threshold"],
        "schema_version": nf.SCHEMA_VERSION,
        "info": {"generator": {"name": GENERATOR_NAME, "version": __version__}},
        "pruning_settings": dict(pruning),
    }
    generation = _generation_settings(graph.metadata)
    if generation:
        metadata["generation_settings"] = generation
    glassbox_section: dict[str, Any] = {
        "format_version": GLASSBOX_FORMAT_VERSION,
        "n_layers": graph.n_layers,
        "vocab_size": graph.vocab_size,
        "model_name": graph.model_name,
        "transcoder_name": graph.transcoder_name,
        "n_features": graph.n_selected,
        "input_tokens": graph.input_tokens.tolist(),
    }
    if scores is not None:
        glassbox_section["replacement_score"] = _finite_or_none(scores[0])
        glassbox_section["completeness_score"] = _finite_or_none(scores[1])
    metadata["glassbox"] = glassbox_section
    return metadata


def _generation_settings(graph_metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Settings the attribution ran with: graph.metadata["generation_settings"] plus the
    well-known keys at its top level. None values are left out (the schema wants numbers)."""
    settings: dict[str, Any] = {}
    nested = graph_metadata.get("generation_settings")
    if isinstance(nested, Mapping):
        settings.update(nested)
    for key in GENERATION_KEYS:
        if key in graph_metadata and key not in settings:
            settings[key] = graph_metadata[key]
    return {k: v for k, v in _jsonable(settings).items() if v is not None}


def _jsonable(value: Any) -> Any:
    """Plain JSON types: tensors/numpy scalars become numbers, others are dropped or stringified."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor | np.ndarray | np.generic):
        return _jsonable(value.tolist()) if getattr(value, "ndim", 0) else _jsonable(value.item())
    if isinstance(value, float):
        return _finite_or_none(value)
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = value


def _finite_or_none(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None

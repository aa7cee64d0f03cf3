"""Graph JSON (Neuronpedia / circuit-tracer schema): checks on upload, gzip storage, summaries.

The checks follow /work/shared/formats/graph-schema.json for the fields the viewers need, and
add what the schema cannot say (links must name existing nodes). They are hand-written
because a full JSON-schema pass over a 100 MB graph takes far too long in a request.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from dataclasses import dataclass
from typing import Any

from server.errors import PayloadTooLarge, Unprocessable

GZIP_MAGIC = b"\x1f\x8b"
NODE_REQUIRED = ("node_id", "feature_type", "layer", "ctx_idx")


@dataclass(frozen=True)
class GraphSummary:
    prompt: str
    tokens: list[str]
    scan: str
    node_count: int
    link_count: int


def decode_upload(raw: bytes, *, max_bytes: int) -> dict[str, Any]:
    """Bytes as uploaded (plain or gzip JSON) -> the parsed document, or a 4xx error."""
    if raw[:2] == GZIP_MAGIC:
        raw = gunzip_limited(raw, max_bytes=max_bytes)
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"the graph is {len(raw)} bytes; the limit is {max_bytes}")
    try:
        doc = json.loads(raw, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise Unprocessable(f"the upload is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise Unprocessable("the graph JSON must be an object with metadata, nodes and links")
    return doc


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def gunzip_limited(raw: bytes, *, max_bytes: int) -> bytes:
    """Decompress, refusing output past `max_bytes` (a gzip bomb stops early)."""
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = decoder.decompress(raw, max_bytes + 1)
    except zlib.error as exc:
        raise Unprocessable(f"the upload is not valid gzip: {exc}") from exc
    if len(out) > max_bytes or decoder.unconsumed_tail:
        raise PayloadTooLarge(f"the graph is over {max_bytes} bytes once decompressed")
    return out


def validate_graph(doc: dict[str, Any]) -> GraphSummary:
    """Check the structure the viewers rely on; return what the graphs table stores."""
    metadata = _require_dict(doc, "metadata")
    prompt = metadata.get("prompt")
    tokens = metadata.get("prompt_tokens")
    if not isinstance(prompt, str):
        raise Unprocessable("metadata.prompt must be a string")
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise Unprocessable("metadata.prompt_tokens must be a list of strings")
    scan = metadata.get("scan", "")
    if not isinstance(scan, str):
        raise Unprocessable("metadata.scan must be a string")
    if "qParams" in doc and not isinstance(doc["qParams"], dict):
        raise Unprocessable("qParams must be an object")
    node_ids = _check_nodes(doc.get("nodes"))
    n_links = _check_links(doc.get("links"), node_ids)
    return GraphSummary(prompt, tokens, scan, len(node_ids), n_links)


def _require_dict(doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key)
    if not isinstance(value, dict):
        raise Unprocessable(f"{key} must be an object")
    return value


def _check_nodes(nodes: Any) -> set[str]:
    if not isinstance(nodes, list):
        raise Unprocessable("nodes must be a list")
    ids: set[str] = set()
    for i, node in enumerate(nodes):
        if not isinstance(node, dict):
            raise Unprocessable(f"nodes[{i}] must be an object")
        missing = [k for k in NODE_REQUIRED if k not in node]
        if missing:
            raise Unprocessable(f"nodes[{i}] lacks {', '.join(missing)}")
        node_id = node["node_id"]
        if not isinstance(node_id, str):
            raise Unprocessable(f"nodes[{i}].node_id must be a string")
        if node_id in ids:
            raise Unprocessable(f"node id {node_id!r} appears twice")
        ids.add(node_id)
    return ids


def _check_links(links: Any, node_ids: set[str]) -> int:
    if not isinstance(links, list):
        raise Unprocessable("links must be a list")
    for i, link in enumerate(links):
        if not isinstance(link, dict):
            raise Unprocessable(f"links[{i}] must be an object")
        source, target, weight = link.get("source"), link.get("target"), link.get("weight")
        if source not in node_ids or target not in node_ids:
            raise Unprocessable(f"links[{i}] joins unknown nodes {source!r} -> {target!r}")
        if not isinstance(weight, int | float) or isinstance(weight, bool):
            raise Unprocessable(f"links[{i}].weight must be a number")
    return len(links)


def compress(doc: dict[str, Any]) -> tuple[bytes, int]:
    """(gzip bytes, uncompressed size) of the compact JSON of `doc`."""
    raw = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=6, mtime=0) as gz:
        gz.write(raw)
    return buffer.getvalue(), len(raw)


def decompress(data_gz: bytes) -> bytes:
    return gzip.decompress(data_gz)

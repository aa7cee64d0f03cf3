"""Graph storage: slugs, the checked and gzip-compressed JSON, and the row that describes it.

Workers store the graphs of finished traces, the setup stores the featured graphs and the
server stores uploads, all through `store_graph`, so every stored graph has passed the one
graph-JSON check (glassbox.graph.json_import) and is compressed the same way.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import re
import secrets
import sys
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from glassbox.errors import GlassboxError, GraphTooLargeError
from glassbox.graph.json_import import GraphSummary, graph_from_json, read_graph_bytes
from persistence.errors import PayloadTooLarge, Unprocessable
from persistence.tables import GraphBlob, GraphRecord, GraphSource, Visibility

log = logging.getLogger(__name__)

SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$"
_NON_SLUG = re.compile(r"[^a-z0-9]+")
# Slug namespaces only the system writes: the setup's featured graphs (glassbox/examples.py).
# A graph with an owner never gets one, so a slug there always means what the system put there.
RESERVED_SLUG_PREFIXES = ("featured-",)


# ---- slugs -----------------------------------------------------------------------------------


def slugify(text: str, *, max_len: int = 40) -> str:
    return _NON_SLUG.sub("-", text.lower()).strip("-")[:max_len].strip("-")


def new_slug(*parts: str) -> str:
    """A readable slug with a random tail, e.g. `gemma-the-capital-of-texas-3fa9c1`; never in a
    reserved namespace (parts come from users: a model named "featured")."""
    stem = "-".join(p for p in (slugify(part) for part in parts) if p)
    while is_reserved_slug(stem + "-"):
        stem = stem.split("-", 1)[1] if "-" in stem else ""
    tail = secrets.token_hex(3)
    return f"{stem[:80]}-{tail}" if stem else tail


def is_reserved_slug(slug: str) -> bool:
    return slug.startswith(RESERVED_SLUG_PREFIXES)


def check_user_slug(slug: str) -> None:
    """Refuse a slug a user asked for in a namespace only the system writes."""
    if is_reserved_slug(slug):
        prefixes = ", ".join(repr(p) for p in RESERVED_SLUG_PREFIXES)
        raise Unprocessable(f"slugs starting with {prefixes} are reserved for the server's own graphs")


def slug_taken(session: Session, slug: str) -> bool:
    return session.scalar(select(GraphRecord.id).where(GraphRecord.slug == slug)) is not None


def free_slug(session: Session, wanted: str) -> str:
    """`wanted` if free, else `wanted` with a random tail (a slug is never reused); never a
    reserved slug (only the setup writes those, and not through here)."""
    slug = wanted
    while slug_taken(session, slug) or is_reserved_slug(slug):
        slug = new_slug(wanted[:80])
    return slug


# ---- uploads ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadLimits:
    """How large each part of an uploaded graph may be: what the viewer can show (a prompt
    axis of a couple of thousand tokens, labels of a few lines) with room to spare. The
    graph as a whole is capped by GLASSBOX_MAX_GRAPH_BYTES."""

    prompt_chars: int = 20_000
    prompt_tokens: int = 2_048
    token_chars: int = 256
    scan_chars: int = 200  # the graphs.scan column
    node_text_chars: int = 2_000  # clerps (labels are edited up to 2,000 too), ids, types
    parameters_bytes: int = 16 * 1024  # metadata kept on the graph's row and shown with it
    parameters_depth: int = 32  # its nesting; answers that carry it are serialised up to 255 deep


UPLOAD_LIMITS = UploadLimits()
KEPT_METADATA = ("node_threshold", "generation_settings", "pruning_settings", "info")


def check_upload_fields(doc: dict[str, Any], limits: UploadLimits = UPLOAD_LIMITS) -> None:
    """Refuse an uploaded graph with a field over its limit (422, naming the field). Runs
    before the schema check; fields of the wrong type are left for it to report."""
    metadata = doc.get("metadata")
    _check_metadata(metadata if isinstance(metadata, dict) else {}, limits)
    nodes = doc.get("nodes")
    for i, node in enumerate(nodes if isinstance(nodes, list) else []):
        for key, value in node.items() if isinstance(node, dict) else ():
            _check_chars(f"nodes[{i}].{key}", value, limits.node_text_chars)


def _check_metadata(metadata: dict[str, Any], limits: UploadLimits) -> None:
    _check_chars("metadata.prompt", metadata.get("prompt"), limits.prompt_chars)
    _check_chars("metadata.scan", metadata.get("scan"), limits.scan_chars)
    tokens = metadata.get("prompt_tokens")
    if isinstance(tokens, list):
        if len(tokens) > limits.prompt_tokens:
            raise Unprocessable(
                f"metadata.prompt_tokens has {len(tokens)} tokens; the limit is {limits.prompt_tokens}"
            )
        for i, token in enumerate(tokens):
            _check_chars(f"metadata.prompt_tokens[{i}]", token, limits.token_chars)
    for key in KEPT_METADATA:
        if key not in metadata:
            continue
        depth = _nesting_depth(metadata[key])
        if depth > limits.parameters_depth:
            limit = limits.parameters_depth
            raise Unprocessable(f"metadata.{key} nests {depth} arrays or objects deep; the limit is {limit}")
        size = len(json.dumps(metadata[key], separators=(",", ":")))
        if size > limits.parameters_bytes:
            limit = limits.parameters_bytes
            raise Unprocessable(f"metadata.{key} is {size} bytes as JSON; the limit is {limit}")


def _nesting_depth(value: Any) -> int:
    """How many arrays and objects deep `value` goes (iteratively: no recursion limit)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _check_chars(where: str, value: Any, limit: int) -> None:
    if isinstance(value, str) and len(value) > limit:
        raise Unprocessable(f"{where} is {len(value)} characters long; the limit is {limit}")


# ---- JSON ------------------------------------------------------------------------------------


# Uploads are the one place where JSON from anyone meets the engine's reader: whatever it trips
# on there is the upload's fault, a 422 (logged, so the reader can learn to say why itself).


def decode_upload(raw: bytes, *, max_bytes: int) -> dict[str, Any]:
    """Bytes as uploaded (plain or gzip JSON) -> the parsed document; over the limit: 413."""
    try:
        return read_graph_bytes(raw, max_bytes=max_bytes)
    except GraphTooLargeError as exc:
        raise PayloadTooLarge(str(exc)) from exc
    except GlassboxError:
        raise
    except ValueError as exc:  # json.loads: an integer literal longer than Python converts
        log.warning("graph upload not readable: %s", exc)
        digits = sys.get_int_max_str_digits()
        raise Unprocessable(f"not valid JSON here: an integer has more than {digits} digits") from exc


def check_graph(doc: dict[str, Any]) -> GraphSummary:
    """Check a graph JSON against the viewers' schema; what the graphs table stores about it."""
    try:
        return GraphSummary.of(graph_from_json(doc))
    except GraphTooLargeError as exc:
        raise PayloadTooLarge(str(exc)) from exc
    except TypeError as exc:  # e.g. an array where a node id belongs
        log.warning("graph upload trips the graph check: %r", exc)
        raise Unprocessable(f"the graph JSON holds a value of the wrong type ({exc})") from exc


def compress(doc: dict[str, Any]) -> tuple[bytes, int]:
    """(gzip bytes, uncompressed size) of the compact UTF-8 JSON of `doc`. What JSON cannot
    carry is refused here, where encoding finds it for free, before any of it is stored: text
    that is not valid Unicode (a lone UTF-16 surrogate, which JSON escapes can spell) and
    non-finite numbers (a literal such as 1e400 parses as infinity, in fields the graph check
    does not read, e.g. metadata.info)."""
    try:
        raw = json.dumps(doc, separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode()
    except UnicodeEncodeError as exc:
        problem = "the graph holds text that is not valid Unicode (a lone UTF-16 surrogate)"
        raise Unprocessable(problem) from exc
    except ValueError as exc:
        problem = "the graph holds a number JSON cannot carry (infinite: a literal such as 1e400 overflows)"
        raise Unprocessable(problem) from exc
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=6, mtime=0) as gz:
        gz.write(raw)
    return buffer.getvalue(), len(raw)


def decompress(data_gz: bytes) -> bytes:
    return gzip.decompress(data_gz)


# ---- rows ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GraphOrigin:
    """Who made a graph and how; everything `store_graph` records beside the JSON."""

    source: GraphSource
    owner_id: int | None
    visibility: Visibility
    model_id: int | None = None
    transcoder_set_id: int | None = None
    parameters: dict[str, Any] | None = None
    replacement_score: float | None = None
    completeness_score: float | None = None


# A graph's title (its owner names it; pages show it before the prompt) is kept in the row's
# `parameters` under this key, beside what made the graph; the API shows it apart from them.
TITLE_KEY = "title"


def graph_title(record: GraphRecord) -> str | None:
    title = (record.parameters or {}).get(TITLE_KEY)
    return title if isinstance(title, str) and title else None


def set_graph_title(record: GraphRecord, title: str) -> None:
    """Name the graph; an empty or blank title removes the name (the caller commits)."""
    parameters = {k: v for k, v in (record.parameters or {}).items() if k != TITLE_KEY}
    if title.strip():
        parameters[TITLE_KEY] = title.strip()
    record.parameters = parameters  # a new dict: the JSON column sees the change


def graph_parameters(record: GraphRecord) -> dict[str, Any]:
    """What made the graph (trace options, imported metadata), without its title."""
    return {k: v for k, v in (record.parameters or {}).items() if k != TITLE_KEY}


def store_graph(
    session: Session,
    doc: dict[str, Any],
    *,
    slug: str,
    origin: GraphOrigin,
    summary: GraphSummary | None = None,
) -> GraphRecord:
    """Add a graph and its compressed JSON to the session (the caller commits). A graph with
    an owner cannot take a reserved slug."""
    if origin.owner_id is not None:
        check_user_slug(slug)
    summary = summary or check_graph(doc)
    doc["metadata"]["slug"] = slug
    data_gz, size = compress(doc)
    record = GraphRecord(
        slug=slug,
        prompt=summary.prompt,
        tokens=summary.tokens,
        parameters=origin.parameters or {},
        scan=summary.scan,
        model_id=origin.model_id,
        transcoder_set_id=origin.transcoder_set_id,
        owner_id=origin.owner_id,
        visibility=origin.visibility,
        source=origin.source,
        node_count=summary.node_count,
        link_count=summary.link_count,
        size_bytes=size,
        replacement_score=origin.replacement_score,
        completeness_score=origin.completeness_score,
    )
    session.add(record)
    session.flush()
    session.add(GraphBlob(graph_id=record.id, data_gz=data_gz))
    return record


def rename_graph(session: Session, record: GraphRecord, slug: str) -> None:
    """Give a stored graph another slug, in its row and in its JSON (the caller commits)."""
    blob = session.get(GraphBlob, record.id)
    if blob is not None:
        doc = json.loads(decompress(blob.data_gz))
        doc["metadata"]["slug"] = slug
        blob.data_gz, _ = compress(doc)
    record.slug = slug

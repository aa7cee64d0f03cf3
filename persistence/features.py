"""Feature rows: where a feature lives (transcoder set, layer, index) and its stored dashboard.

The features builder (through the setup) writes dashboards here; the server reads them and
adds labels, votes and comments (server/services/features.py).
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import LargeBinary, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, undefer

from persistence import registry
from persistence.errors import Unprocessable
from persistence.tables import Feature, TranscoderSetEntry, utcnow


@dataclass(frozen=True)
class FeatureAddress:
    tset: TranscoderSetEntry
    layer: int
    index: int


def address(session: Session, model_name: str, set_name: str, layer: int, index: int) -> FeatureAddress:
    """Resolve names to a transcoder set and check the layer against it."""
    model = registry.get_model(session, model_name)
    tset = registry.get_transcoder_set(session, model, set_name)
    check_layer(tset, layer)
    return FeatureAddress(tset, layer, index)


def check_layer(tset: TranscoderSetEntry, layer: int) -> None:
    if tset.n_layers is not None and not 0 <= layer < tset.n_layers:
        raise Unprocessable(f"layer {layer} is out of range: {tset.name!r} has layers 0-{tset.n_layers - 1}")


def find_feature(session: Session, addr: FeatureAddress, *, with_dashboard: bool = False) -> Feature | None:
    stmt = select(Feature).where(
        Feature.transcoder_set_id == addr.tset.id, Feature.layer == addr.layer, Feature.index == addr.index
    )
    if with_dashboard:
        stmt = stmt.options(undefer(Feature.dashboard_gz))
    return session.scalar(stmt)


def ensure_feature(session: Session, addr: FeatureAddress) -> Feature:
    """The feature's row, created empty on first write (labels may precede dashboards)."""
    feature = find_feature(session, addr)
    if feature is not None:
        return feature
    feature = Feature(transcoder_set_id=addr.tset.id, layer=addr.layer, index=addr.index)
    session.add(feature)
    try:
        session.flush()
    except IntegrityError:  # created meanwhile by another request; nothing else is pending
        session.rollback()
        feature = find_feature(session, addr)
        if feature is None:
            raise
    return feature


def store_dashboard(
    session: Session, addr: FeatureAddress, *, dashboard: dict[str, Any], auto_label: str | None
) -> Feature:
    """Save a feature's dashboard JSON (gzip) and auto label; for the features builder."""
    feature = ensure_feature(session, addr)
    try:
        text = json.dumps(dashboard, separators=(",", ":"), allow_nan=False)
    except ValueError as exc:  # NaN or Infinity: not JSON, and no answer could carry it
        raise Unprocessable(f"the dashboard holds a number JSON cannot carry: {exc}") from exc
    feature.dashboard_gz = gzip.compress(text.encode(), mtime=0)
    if auto_label is not None:
        feature.auto_label = auto_label
    feature.updated_at = utcnow()
    session.commit()
    return feature


# ---- reading dashboards without inflating them ------------------------------------------------

FREQUENCY_KEYS = ("activation_frequency", "frac_nonzero")  # the builder's, feature-details'
HEAD_BYTES = 2048  # of a gzip dashboard: the builder writes activation_frequency in its first keys


def frequency_of(dashboard: dict[str, Any] | None) -> float | None:
    """How often the feature fires (share of tokens), from a dashboard dict; None if it does not say."""
    for key in FREQUENCY_KEYS:
        value = (dashboard or {}).get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                if math.isfinite(value):
                    return float(value)
            except OverflowError:  # an integer past float's range
                pass
    return None


def _head_frequency(text: str, complete: bool) -> tuple[bool, float | None]:
    """(settled, frequency) from the top-level keys of JSON text that may be cut short."""
    decoder, n = json.JSONDecoder(), len(text)

    def skip(i: int, chars: str = " \t\r\n,") -> int:
        while i < n and text[i] in chars:
            i += 1
        return i

    i = skip(0, " \t\r\n")
    if text[i : i + 1] != "{":
        return complete, None
    i += 1
    while True:
        i = skip(i)
        if i >= n or text[i] == "}":
            return i < n or complete, None
        try:
            key, i = decoder.raw_decode(text, i)
            i = skip(i, " \t\r\n:")
            value, i = decoder.raw_decode(text, i)
        except (json.JSONDecodeError, ValueError):
            return complete, None  # cut short (or not JSON: then nothing will be found)
        except RecursionError:  # nested too deep to read here: no frequency
            return True, None
        i = skip(i, " \t\r\n")
        if i >= n or text[i] not in ",}":
            return complete, None  # a number cut short ("0.01|23", "0.|0123") reads as another number
        if key in FREQUENCY_KEYS:
            return True, frequency_of({key: value})


def activation_frequencies(session: Session, feature_ids: list[int]) -> dict[int, float | None]:
    """Feature id -> activation frequency of its stored dashboard, read off the first bytes of
    the gzip when they hold it (the whole dashboard only for those that keep it further on)."""
    if not feature_ids:
        return {}
    head = func.substr(Feature.dashboard_gz, 1, HEAD_BYTES, type_=LargeBinary)
    out: dict[int, float | None] = {}
    later: list[int] = []
    for fid, data in session.execute(select(Feature.id, head).where(Feature.id.in_(feature_ids))):
        if not data:
            out[fid] = None
            continue
        raw = bytes(data)
        inflater = zlib.decompressobj(wbits=31)  # gzip
        try:
            text = inflater.decompress(raw).decode("utf-8", errors="replace")
        except zlib.error:
            out[fid] = None
            continue
        settled, value = _head_frequency(text, complete=inflater.eof)
        if settled:
            out[fid] = value
        else:
            later.append(fid)
    if later:
        rows = session.execute(select(Feature.id, Feature.dashboard_gz).where(Feature.id.in_(later)))
        for fid, data in rows:
            out[fid] = frequency_of(json.loads(gzip.decompress(data), parse_constant=lambda _: None))
    return out


def replace_auto_labels(
    session: Session, tset: TranscoderSetEntry, layer: int, labels: dict[int, tuple[str, dict[str, Any]]]
) -> int:
    """Give the features of one layer that have rows new auto labels ({index: (text, provenance)}),
    in their column and inside their stored dashboards; commits. Returns how many rows changed."""
    stmt = (
        select(Feature)
        .where(Feature.transcoder_set_id == tset.id, Feature.layer == layer)
        .options(undefer(Feature.dashboard_gz))
    )
    n = 0
    for feature in session.scalars(stmt):
        found = labels.get(feature.index)
        if found is None:
            continue
        text, provenance = found
        changed = feature.auto_label != text
        feature.auto_label = text
        if feature.dashboard_gz is not None:
            dashboard = json.loads(gzip.decompress(feature.dashboard_gz), parse_constant=lambda _: None)
            if dashboard.get("auto_label") != text or dashboard.get("auto_label_provenance") != provenance:
                dashboard["auto_label"], dashboard["auto_label_provenance"] = text, provenance
                raw = json.dumps(dashboard, separators=(",", ":"), allow_nan=False).encode()
                feature.dashboard_gz = gzip.compress(raw, mtime=0)
                changed = True
        if changed:
            feature.updated_at = utcnow()
            n += 1
    session.commit()
    return n

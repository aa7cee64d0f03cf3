"""Feature rows: where a feature lives (transcoder set, layer, index) and its stored dashboard.

The features builder (through the setup) writes dashboards here; the server reads them and
adds labels, votes and comments (server/services/features.py).
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
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

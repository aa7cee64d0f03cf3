"""Feature dashboards and labels for a view server's graphs, read from a features store.

The viewer asks by node id ("{layer}_{feature}_{pos}"); a store answers by (layer, feature).
Ids the store cannot answer (another node kind, a layer or index it does not have) get None,
as the viewer expects for a feature without a dashboard.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glassbox.errors import GlassboxError

if TYPE_CHECKING:
    from glassbox.features.store import FeatureStore

logger = logging.getLogger(__name__)

FEATURE_ID = re.compile(r"(\d+)_(\d+)_(\d+)")
MAX_IDS = 100_000  # one request: more feature nodes than any graph the viewer can draw


def open_store(where: FeatureStore | str | Path | None) -> FeatureStore | None:
    """A features store from a store, a folder (as `glassbox features build` writes it) or None."""
    if where is None:
        return None
    from glassbox.features.store import FeatureStore

    return where if isinstance(where, FeatureStore) else FeatureStore.open(where)


def store_keys(store: FeatureStore, node_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
    """node id -> (layer, feature) for the ids that name a feature the store holds."""
    if len(node_ids) > MAX_IDS:
        raise GlassboxError(f"at most {MAX_IDS} node ids per request, got {len(node_ids)}")
    layers = set(store.layers)
    keys = {}
    for node_id in node_ids:
        match = FEATURE_ID.fullmatch(str(node_id))
        if match is None:
            continue
        layer, feature = int(match.group(1)), int(match.group(2))
        if layer in layers and feature < store.d_transcoder:
            keys[str(node_id)] = (layer, feature)
    return keys


def dashboards(store: FeatureStore, node_ids: Sequence[str]) -> dict[str, dict[str, Any] | None]:
    """node id -> the feature's dashboard (FeatureStore.get's dict) or None."""
    keys = store_keys(store, node_ids)
    found = dict.fromkeys((str(i) for i in node_ids), None)
    if keys:
        found.update(zip(keys, store.get_many(list(keys.values())), strict=True))
    return found


def labels(store: FeatureStore, node_ids: Sequence[str]) -> dict[str, str]:
    """node id -> the feature's automatic label, for the ids whose feature has one."""
    keys = store_keys(store, node_ids)
    by_key = store.auto_labels(list(set(keys.values())))
    return {node_id: by_key[key] for node_id, key in keys.items() if key in by_key}

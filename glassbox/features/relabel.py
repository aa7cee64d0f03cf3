"""Automatic labels of a store's features, from what the store keeps (examples, tokens, vocabulary).

The build labels every feature as it finalizes a layer (`label_row`); `relabel_store` labels a
finished store again with the current method, in place and in one transaction, without the
model (`glassbox features relabel DIR`): stores built by an older Glassbox get the new labels
without rebuilding their dashboards.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from glassbox.features import codec
from glassbox.features.codec import FeatureBlob
from glassbox.features.labels import AFTER, BEFORE, METHOD, LabelEvidence, Vocab, auto_label
from glassbox.features.store import DATABASE, MANIFEST, TOKENS, VOCAB, FeatureStore, write_manifest

LabelRow = tuple[int, str, dict[str, Any]]


def evidence(blob: FeatureBlob, n_fires: int, tokens: np.ndarray) -> LabelEvidence:
    """The windows around every stored example's maximum (top contexts, then samples)."""
    index = np.concatenate([blob.top_index, blob.smp_index])
    acts = np.concatenate([blob.top_act, blob.smp_act]).astype(np.float64)
    T = tokens.shape[1]
    rows, pos = np.divmod(index, T)
    cols = pos[:, None] + np.arange(-BEFORE, AFTER + 1)  # (n, WIDTH)
    inside = (cols >= 1) & (cols < T)  # column 0 holds BOS
    ids = np.where(inside, tokens[rows[:, None], np.clip(cols, 0, T - 1)], -1) if len(index) else \
        np.zeros((0, BEFORE + 1 + AFTER), dtype=np.int64)
    n = len(blob.logit_ids) // 2
    return LabelEvidence(windows=ids, acts=acts, top_logit_ids=blob.logit_ids[:n], n_fires=n_fires)


def label_row(feature: int, n_fires: int, blob: FeatureBlob, tokens: np.ndarray, vocab: Vocab,
              built_at: str) -> LabelRow:
    """(feature, label, provenance) for StoreWriter.add_labels and the labels table."""
    ev = evidence(blob, n_fires, tokens)
    text, details = auto_label(ev, vocab, n_tokens=int(tokens.size))
    provenance = {"kind": "auto", "method": METHOD, "confidence": details.pop("confidence"),
                  "low_confidence": details.pop("low_confidence"), "pattern": details.pop("pattern"),
                  "n_examples": int(len(ev.acts)), "evidence": details, "store_built_at": built_at}
    return feature, text, provenance


def relabel_store(folder: str | Path, *, progress: Callable[[int, int], None] | None = None) -> int:
    """Replace every automatic label of a finished store; returns how many features were labelled."""
    fs = FeatureStore.open(folder)
    path = fs.folder
    tokens = np.asarray(np.load(path / TOKENS))
    strings = json.loads((path / VOCAB).read_text())
    vocab = Vocab(strings, np.bincount(tokens.ravel(), minlength=len(strings)))
    built_at = str(fs.manifest.get("built_at", ""))
    fs.close()
    F, n = int(fs.manifest["d_transcoder"]), 0
    db = sqlite3.connect(path / DATABASE)
    try:
        with db:  # one transaction: readers see the old labels or the new ones
            for i, layer in enumerate(fs.layers):
                if progress:
                    progress(i, len(fs.layers))
                found = db.execute("SELECT feature, n_fires, data FROM features WHERE layer = ? "
                                   "ORDER BY feature", (layer,)).fetchall()
                rows = [label_row(f, nf, codec.decode(data, fs.shape), tokens, vocab, built_at)
                        for f, nf, data in found]
                db.executemany("INSERT OR REPLACE INTO labels VALUES (?, ?, ?, ?)",
                               ((layer * F + f, "auto", text, json.dumps(prov, separators=(",", ":")))
                                for f, text, prov in rows))
                n += len(rows)
    finally:
        db.close()
    manifest = json.loads((path / MANIFEST).read_text())
    manifest["label_method"] = METHOD
    write_manifest(path, manifest)
    if progress:
        progress(len(fs.layers), len(fs.layers))
    return n

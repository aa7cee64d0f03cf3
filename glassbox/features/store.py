"""The finished store: one folder, read by `FeatureStore` (server, CLI) and written by the build.

    manifest.json      what was built, with which settings; written last (its presence = complete)
    features.sqlite    features(id = layer * d_transcoder + feature, layer, feature, n_fires,
                       act_max, act_mean, data = codec blob);  labels(id, kind, text, provenance)
    tokens.npy         (rows, seq_len) int32 token stream; examples point into it
    vocab.json         every token id decoded on its own, for display

A lookup is one indexed SQLite read per feature (batched as `id IN (...)`), a zlib inflate and
numpy views; the text of examples comes from the memory-mapped token stream.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from glassbox.features import codec
from glassbox.features.errors import FeatureStoreError

MANIFEST = "manifest.json"
DATABASE = "features.sqlite"
TOKENS = "tokens.npy"
VOCAB = "vocab.json"
FORMAT = "glassbox-features"
VERSION = 1
SQL_BATCH = 500

SCHEMA = """
CREATE TABLE features (
    id INTEGER PRIMARY KEY, layer INTEGER NOT NULL, feature INTEGER NOT NULL,
    n_fires INTEGER NOT NULL, act_max REAL NOT NULL, act_mean REAL NOT NULL, data BLOB NOT NULL);
CREATE TABLE labels (
    id INTEGER NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL, provenance TEXT NOT NULL,
    PRIMARY KEY (id, kind));
"""


def cantor_pair(layer: int, feature: int) -> int:
    """The feature id circuit-tracer graphs use in a node's `feature` field."""
    from glassbox.graph.neuronpedia import cantor_pair as pair

    return pair(layer, feature)


# ---- writing ---------------------------------------------------------------------------------

class StoreWriter:
    """Writes features.sqlite under a temporary name; `commit` makes it the store's database."""

    def __init__(self, folder: Path, *, d_transcoder: int) -> None:
        self.folder = folder
        self.d_transcoder = d_transcoder
        self.tmp = folder / (DATABASE + ".tmp")
        self.tmp.unlink(missing_ok=True)
        self.db = sqlite3.connect(self.tmp)
        self.db.executescript(SCHEMA)

    def add_features(self, layer: int, rows: Iterable[tuple[int, int, float, float, bytes]]) -> None:
        """rows: (feature, n_fires, act_max, act_mean, blob)."""
        F = self.d_transcoder
        self.db.executemany(
            "INSERT INTO features VALUES (?, ?, ?, ?, ?, ?, ?)",
            ((layer * F + f, layer, f, n, mx, mean, blob) for f, n, mx, mean, blob in rows))

    def add_labels(self, layer: int, kind: str, rows: Iterable[tuple[int, str, dict]]) -> None:
        F = self.d_transcoder
        self.db.executemany(
            "INSERT OR REPLACE INTO labels VALUES (?, ?, ?, ?)",
            ((layer * F + f, kind, text, json.dumps(prov, separators=(",", ":"))) for f, text, prov in rows))

    def commit(self) -> None:
        self.db.commit()
        self.db.execute("VACUUM")
        self.db.close()
        self.tmp.replace(self.folder / DATABASE)


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    tmp.replace(folder / MANIFEST)


def write_vocab(folder: Path, vocab: list[str]) -> None:
    tmp = folder / (VOCAB + ".tmp")
    tmp.write_text(json.dumps(vocab, ensure_ascii=False))
    tmp.replace(folder / VOCAB)


# ---- reading ---------------------------------------------------------------------------------

class FeatureStore:
    """Read-only access to a built store; safe to share between threads."""

    def __init__(self, folder: Path, manifest: dict[str, Any]) -> None:
        self.folder = folder
        self.manifest = manifest
        cfg = manifest["config"]
        self.d_transcoder: int = manifest["d_transcoder"]
        self.layers: list[int] = list(manifest["layers"])
        self.seq_len: int = manifest["seq_len"]
        self.window_before: int = cfg["window_before"]
        self.shape = codec.BlobShape(window=cfg["window_before"] + 1 + cfg["window_after"],
                                     n_hist=len(manifest["histogram_edges"]) + 1, n_logits=cfg["n_logits"])
        self.edges: list[float] = manifest["histogram_edges"]
        self.transcoder_id: str = manifest["transcoders"]["name"]
        self._local = threading.local()
        self._lock = threading.Lock()
        self._tokens: np.ndarray | None = None
        self._vocab: np.ndarray | None = None

    @classmethod
    def open(cls, folder: str | Path) -> FeatureStore:
        """Open a finished store folder (raises FeatureStoreError if it is not one)."""
        path = Path(folder).expanduser()
        if not (path / MANIFEST).is_file():
            hint = " (its build has not finished: run the same build command again to resume it)" \
                if (path / "build.json").is_file() else ""
            raise FeatureStoreError(f"{path} is not a feature store: no {MANIFEST}{hint}")
        manifest = json.loads((path / MANIFEST).read_text())
        if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
            raise FeatureStoreError(f"{path}: unsupported store format {manifest.get('format')!r} "
                                    f"version {manifest.get('version')!r}")
        for name in (DATABASE, TOKENS, VOCAB):
            if not (path / name).is_file():
                raise FeatureStoreError(f"{path} is incomplete: {name} is missing")
        return cls(path, manifest)

    # ---- lazily opened resources -------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(f"file:{self.folder / DATABASE}?mode=ro", uri=True, check_same_thread=False)
            self._local.db = db
        return db

    @property
    def tokens(self) -> np.ndarray:
        """(rows, seq_len) token ids of the corpus the store was built on (memory-mapped)."""
        if self._tokens is None:
            with self._lock:
                if self._tokens is None:
                    self._tokens = np.load(self.folder / TOKENS, mmap_mode="r")
        return self._tokens

    @property
    def vocab(self) -> np.ndarray:
        """Decoded token strings, as an object array (vectorised lookup)."""
        if self._vocab is None:
            with self._lock:
                if self._vocab is None:
                    self._vocab = np.array(json.loads((self.folder / VOCAB).read_text()), dtype=object)
        return self._vocab

    # ---- public API ------------------------------------------------------------------------
    def get(self, layer: int, feature: int, *, examples: bool | int = True) -> dict[str, Any]:
        """One feature's dashboard dict (see the package docstring for its keys)."""
        return self.get_many([(layer, feature)], examples=examples)[0]

    def get_many(self, keys: Sequence[tuple[int, int]], *,
                 examples: bool | int = True) -> list[dict[str, Any]]:
        """Dashboards of many features, in the order asked (repeats allowed).

        examples: True for every stored example; an int n for at most n per group (the viewer
        shows 4), which is what makes hundreds of dashboards at once cheap; False or 0 for none
        (labels, statistics and logits of a whole graph).
        """
        ids = [self._id(layer, feature) for layer, feature in keys]
        unique = sorted(set(ids))
        rows, labels = self._rows(unique), self._labels(unique)
        blobs = {i: codec.decode(rows[i][3], self.shape) for i in unique}
        built = {i: self._assemble(i, rows[i], blobs[i], labels.get(i)) for i in unique}
        if examples is not False and examples != 0:
            self._attach_examples(built, blobs, per_group=None if examples is True else int(examples))
        out, seen = [], set()
        for i in ids:
            out.append(_copy(built[i]) if i in seen else built[i])
            seen.add(i)
        return out

    def auto_label(self, layer: int, feature: int) -> str | None:
        """The automatic label of one feature (None if it has none)."""
        found = self._labels([self._id(layer, feature)])
        return found[self._id(layer, feature)][0] if found else None

    def auto_labels(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], str]:
        """Automatic labels of many features, keyed (layer, feature): e.g. for graph clerps."""
        ids = {self._id(layer, feature): (int(layer), int(feature)) for layer, feature in keys}
        return {ids[i]: text for i, (text, _) in self._labels(sorted(ids)).items()}

    def labels_with_provenance(self, layer: int) -> dict[int, tuple[str, dict[str, Any]]]:
        """{feature: (automatic label, its provenance)} of one layer: e.g. to copy them elsewhere."""
        ids = [self._id(layer, f) for f in range(self.d_transcoder)]
        return {i - layer * self.d_transcoder: found for i, found in self._labels(ids).items()}

    def label_provenance(self, layer: int, feature: int) -> dict[str, Any] | None:
        found = self._labels([self._id(layer, feature)])
        return found[self._id(layer, feature)][1] if found else None

    def feature_details(self, layer: int, feature: int) -> dict[str, Any]:
        """One feature in Anthropic's feature-details format (validates against its schema)."""
        from glassbox.features.export import to_feature_details

        return to_feature_details(self.get(layer, feature))

    def layer_summary(self) -> list[dict[str, Any]]:
        """Per layer: features, dead features (never fired), median activation frequency."""
        n_tokens = max(1, self.manifest["n_tokens_counted"])
        out = []
        for layer in self.layers:
            counts = sorted(n for (n,) in self._db().execute(
                "SELECT n_fires FROM features WHERE layer = ?", (layer,)))
            out.append({"layer": layer, "n_features": len(counts), "dead": sum(1 for n in counts if n == 0),
                        "median_frequency": counts[len(counts) // 2] / n_tokens if counts else 0.0})
        return out

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # ---- internals -------------------------------------------------------------------------
    def _id(self, layer: int, feature: int) -> int:
        layer, feature = int(layer), int(feature)
        if layer not in self.layers:
            raise FeatureStoreError(f"layer {layer} is not in this store (layers: {_ranges(self.layers)})")
        if not 0 <= feature < self.d_transcoder:
            raise FeatureStoreError(f"feature {feature} is out of range: layer {layer} has features "
                                    f"0-{self.d_transcoder - 1}")
        return layer * self.d_transcoder + feature

    def _rows(self, ids: list[int]) -> dict[int, tuple]:
        db, found = self._db(), {}
        for start in range(0, len(ids), SQL_BATCH):
            part = ids[start: start + SQL_BATCH]
            marks = ",".join("?" * len(part))
            for row in db.execute(f"SELECT id, n_fires, act_max, act_mean, data FROM features "
                                  f"WHERE id IN ({marks})", part):
                found[row[0]] = row[1:]
        missing = [i for i in ids if i not in found]
        if missing:
            layer, feature = divmod(missing[0], self.d_transcoder)
            raise FeatureStoreError(f"feature {layer}/{feature} is missing from {self.folder}")
        return found

    def _labels(self, ids: list[int], kind: str = "auto") -> dict[int, tuple[str, dict]]:
        db, found = self._db(), {}
        for start in range(0, len(ids), SQL_BATCH):
            part = ids[start: start + SQL_BATCH]
            marks = ",".join("?" * len(part))
            for i, text, prov in db.execute(f"SELECT id, text, provenance FROM labels WHERE kind = ? "
                                            f"AND id IN ({marks})", [kind, *part]):
                found[i] = (text, json.loads(prov))
        return found

    def _assemble(self, i: int, row: tuple, blob: codec.FeatureBlob,
                  label: tuple[str, dict] | None) -> dict[str, Any]:
        layer, feature = divmod(i, self.d_transcoder)
        n_fires, act_max, act_mean, _ = row
        n = self.shape.n_logits
        vocab = self.vocab
        n_tokens = self.manifest["n_tokens_counted"]
        top_ok, bottom_ok = blob.logit_ids[:n] >= 0, blob.logit_ids[n:] >= 0  # -1: zero decoder row
        top_ids, bottom_ids = blob.logit_ids[:n][top_ok], blob.logit_ids[n:][bottom_ok]
        return {
            "index": cantor_pair(layer, feature),
            "layer": layer,
            "feature": feature,
            "transcoder_id": self.transcoder_id,
            "auto_label": label[0] if label else None,
            "auto_label_provenance": label[1] if label else None,
            "activation_frequency": n_fires / n_tokens if n_tokens else 0.0,
            "n_fires": int(n_fires),
            "n_tokens": n_tokens,
            "act_min": blob.header.get("act_min", 0.0),
            "act_max": act_max,
            "act_mean": act_mean,
            "quantile_values": blob.header["quantile_values"],
            "histogram": blob.hist.tolist(),
            "histogram_edges": self.edges,
            "top_logits": vocab[top_ids].tolist(),
            "top_logits_values": blob.logit_values[:n][top_ok].tolist(),
            "top_logits_ids": top_ids.tolist(),
            "bottom_logits": vocab[bottom_ids].tolist(),
            "bottom_logits_values": blob.logit_values[n:][bottom_ok].tolist(),
            "bottom_logits_ids": bottom_ids.tolist(),
            "examples_quantiles": [],
        }

    def _attach_examples(self, built: dict[int, dict[str, Any]], blobs: dict[int, codec.FeatureBlob], *,
                         per_group: int | None) -> None:
        """Fill every dashboard's examples_quantiles, with one vectorised pass over all examples."""
        order = list(built)
        picks = [_pick(blobs[i], per_group) for i in order]  # (top rows, sample rows, group sizes)
        acts, indices, windows = [], [], []
        for i, (top, smp, _) in zip(order, picks, strict=True):
            b = blobs[i]
            acts += [b.top_act[top], b.smp_act[smp]]
            indices += [b.top_index[top], b.smp_index[smp]]
            windows += [b.top_window[top], b.smp_window[smp]]
        examples = self._examples(np.concatenate(acts), np.concatenate(indices), np.concatenate(windows))
        start = 0
        for i, (top, smp, sizes) in zip(order, picks, strict=True):
            mid, end = start + len(top), start + len(top) + len(smp)
            groups = self._groups(blobs[i], examples[start:mid], examples[mid:end], sizes)
            built[i]["examples_quantiles"] = groups
            start = end

    @staticmethod
    def _groups(blob: codec.FeatureBlob, top: list[dict], samples: list[dict],
                sizes: list[int]) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = []
        if top:
            groups.append({"quantile_name": "Top activations", "examples": top})
        start = 0
        for g, n in zip(blob.header["groups"], sizes, strict=True):
            groups.append({"quantile_name": g["name"], "quantiles": g["quantiles"], "lower": g["lower"],
                           "upper": g["upper"], "count": g["count"], "examples": samples[start: start + n]})
            start += n
        return groups

    def _examples(self, act: np.ndarray, index: np.ndarray, window: np.ndarray) -> list[dict[str, Any]]:
        """Example dicts: the window's tokens and activations, trimmed to the row."""
        if act.shape[0] == 0:
            return []
        T, W, before = self.seq_len, window.shape[1], self.window_before
        rows, pos = np.divmod(index, T)  # (n,)
        start = pos - before  # (n,) row position of window column 0
        cols = np.clip(start[:, None] + np.arange(W), 0, T - 1)  # (n, W)
        strings = self.vocab[self.tokens[rows[:, None], cols]].tolist()  # n lists of W tokens
        acts = window.astype(np.float32).tolist()
        lo, hi = np.maximum(0, -start), np.minimum(W, T - start)
        for j in np.flatnonzero((lo > 0) | (hi < W)).tolist():  # windows cut by the row's ends
            strings[j], acts[j] = strings[j][lo[j]: hi[j]], acts[j][lo[j]: hi[j]]
        return [{"tokens": s, "tokens_acts_list": a, "train_token_ind": t, "is_repeated_datapoint": False,
                 "act": v, "max_index": m}
                for s, a, t, v, m in zip(strings, acts, index.tolist(), act.tolist(), (before - lo).tolist(),
                                         strict=True)]


def _pick(blob: codec.FeatureBlob, per_group: int | None) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Rows of the top and sample examples to show (at most per_group of each group), group sizes."""
    k = blob.top_act.shape[0]
    sizes = [g["n"] for g in blob.header["groups"]]
    if per_group is None:
        return np.arange(k), np.arange(sum(sizes)), sizes
    starts = np.cumsum([0, *sizes])[:-1].tolist()  # [] for a feature with no sample groups
    shown = [min(n, per_group) for n in sizes]
    rows = [np.arange(s, s + n) for s, n in zip(starts, shown, strict=True)]
    return np.arange(min(k, per_group)), np.concatenate(rows) if rows else np.arange(0), shown


def _copy(d: dict[str, Any]) -> dict[str, Any]:
    """A repeated key gets its own top-level dict (callers may edit what they get)."""
    return dict(d)


def _ranges(values: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2, 5'."""
    parts, run = [], []
    for v in sorted(values):
        if run and v == run[-1] + 1:
            run.append(v)
            continue
        if run:
            parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [v]
    if run:
        parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ", ".join(parts)

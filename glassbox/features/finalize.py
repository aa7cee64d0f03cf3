"""From streaming state to what the store keeps per feature: examples to show, groups, label.

Quantile groups: the histogram says what share of a feature's firings falls in each sampling
band, so each band gets the activation quantile of its middle, and bands are grouped by
`BuildConfig.quantile_cuts` (e.g. 0-50%, 50-90%, 90-99%, 99-100%). A group shows up to
`examples_per_group` reservoir samples, spread over its bands in proportion to their firing
counts (each band's reservoir is a uniform sample of that band, so the group's examples are
close to a uniform sample of the group). Samples that are also top examples are skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from glassbox.features.codec import FeatureBlob
from glassbox.features.config import BuildConfig
from glassbox.features.logits import LogitTable
from glassbox.features.state import LayerState


@dataclass
class FeatureSummary:
    feature: int
    n_fires: int
    act_max: float
    act_mean: float
    blob: FeatureBlob


@dataclass
class LayerArrays:
    """A layer's state as numpy arrays (one conversion per layer, then cheap per-feature views)."""

    n_fires: np.ndarray
    act_sum: np.ndarray
    act_min: np.ndarray
    hist: np.ndarray
    top_act: np.ndarray
    top_index: np.ndarray
    top_window: np.ndarray
    smp_key: np.ndarray  # int64, -1 = empty
    smp_act: np.ndarray
    smp_index: np.ndarray
    smp_window: np.ndarray

    @classmethod
    def of(cls, st: LayerState) -> LayerArrays:
        return cls(**{name: t.numpy() for name, t in st.to_dict().items()})


class Finalizer:
    """Builds every feature's blob for one store configuration."""

    def __init__(self, cfg: BuildConfig) -> None:
        self.cfg = cfg
        self.edges = cfg.edges().double().numpy()  # (n_bins + 1,)
        self.bin_band = cfg.band_of_bin(torch.arange(cfg.n_hist)).numpy()  # (NH,) band of each bin
        self.cuts = np.array([0.0, *cfg.quantile_cuts, 1.0])

    def layer(self, st: LayerState, logits: LogitTable) -> Iterator[FeatureSummary]:
        a = LayerArrays.of(st)
        ids = np.concatenate([logits.top_ids.numpy(), logits.bottom_ids.numpy()], axis=1).astype(np.int32)
        vals = np.concatenate([logits.top_values.numpy(), logits.bottom_values.numpy()], axis=1)
        for f in range(a.n_fires.shape[0]):
            yield self.feature(a, f, ids[f], vals[f])

    def feature(self, a: LayerArrays, f: int, logit_ids: np.ndarray,
                logit_values: np.ndarray) -> FeatureSummary:
        n_fires = int(a.n_fires[f])
        k = int(np.isfinite(a.top_act[f]).sum())
        groups, chosen = self._groups(a, f, set(a.top_index[f, :k].tolist()))
        flat = (np.array([b for b, _ in chosen], dtype=np.int64),
                np.array([r for _, r in chosen], dtype=np.int64))  # (band, slot) index pairs
        act_max = float(a.top_act[f, 0]) if k else 0.0
        header = {"groups": groups, "quantile_values": self._quantile_values(a, f, act_max),
                  "act_min": float(a.act_min[f]) if n_fires else 0.0}
        blob = FeatureBlob(
            header=header,
            top_act=a.top_act[f, :k], top_index=a.top_index[f, :k], top_window=a.top_window[f, :k],
            smp_act=a.smp_act[f][flat], smp_index=a.smp_index[f][flat], smp_window=a.smp_window[f][flat],
            hist=a.hist[f], logit_ids=logit_ids, logit_values=logit_values,
        )
        mean = float(a.act_sum[f] / n_fires) if n_fires else 0.0
        return FeatureSummary(feature=f, n_fires=n_fires, act_max=act_max, act_mean=mean, blob=blob)

    # ---- quantile groups -------------------------------------------------------------------
    def _band_counts(self, hist: np.ndarray) -> np.ndarray:
        return np.bincount(self.bin_band, weights=hist, minlength=self.cfg.n_bands)

    def _groups(self, a: LayerArrays, f: int, top_rows: set[int]) -> tuple[list[dict], list[tuple[int, int]]]:
        """Display groups (highest first) and the (band, slot) of each chosen sample, in order."""
        counts = self._band_counts(a.hist[f])  # (NB,)
        total = counts.sum()
        if total == 0:
            return [], []
        mid_q = (np.cumsum(counts) - counts / 2) / total
        group_of = np.searchsorted(self.cuts, mid_q, side="right") - 1
        groups, chosen = [], []
        for g in range(len(self.cuts) - 2, -1, -1):
            bands = [b for b in np.flatnonzero(group_of == g).tolist() if counts[b] > 0]
            slots = {b: [r for r in range(self.cfg.samples_per_band)
                         if a.smp_key[f, b, r] >= 0 and int(a.smp_index[f, b, r]) not in top_rows]
                     for b in bands}
            take = allocate(self.cfg.examples_per_group, [counts[b] for b in bands],
                            [len(slots[b]) for b in bands])
            picked = [(b, r) for b, n in zip(bands, take, strict=True) for r in slots[b][:n]]
            if not picked:
                continue
            picked.sort(key=lambda br: -float(a.smp_act[f, br[0], br[1]]))
            chosen.extend(picked)
            groups.append(self._group_info(a, f, g, bands, counts, len(picked)))
        return groups, chosen

    def _group_info(self, a: LayerArrays, f: int, g: int, bands: list[int], counts: np.ndarray,
                    n: int) -> dict:
        lo_q, hi_q = float(self.cuts[g]), float(self.cuts[g + 1])
        lower = max(self._band_lower(bands[0]), float(a.act_min[f]))
        upper = min(self._band_upper(bands[-1]), float(a.top_act[f, 0]))
        return {"name": f"Quantile {lo_q * 100:g}-{hi_q * 100:g}% (activation {lower:.3g}-{upper:.3g})",
                "quantiles": [lo_q, hi_q], "lower": lower, "upper": upper,
                "count": int(sum(counts[b] for b in bands)), "n": n}

    def _band_lower(self, band: int) -> float:
        return 0.0 if band == 0 else float(self.edges[band * self.cfg.bins_per_band])

    def _band_upper(self, band: int) -> float:
        last = (band + 1) * self.cfg.bins_per_band
        return float("inf") if band == self.cfg.n_bands - 1 else float(self.edges[min(last, self.cfg.n_bins)])

    def _quantile_values(self, a: LayerArrays, f: int, act_max: float) -> list[float]:
        """Activation at each quantile cut, read off the histogram (geometric inside a bin)."""
        hist = a.hist[f].astype(np.float64)
        total = hist.sum()
        if total == 0:
            return []
        cdf = np.cumsum(hist) / total
        lo_edges = np.concatenate([[max(float(a.act_min[f]), 1e-12)], self.edges])  # lower edge per bin
        hi_edges = np.concatenate([self.edges, [max(act_max, self.edges[-1])]])
        out = []
        for q in self.cfg.quantile_cuts:
            b = int(np.searchsorted(cdf, q, side="left"))
            before = cdf[b - 1] if b > 0 else 0.0
            frac = (q - before) / max(cdf[b] - before, 1e-12)
            lo, hi = min(lo_edges[b], hi_edges[b]), hi_edges[b]
            value = lo * (hi / lo) ** frac if lo > 0 else hi * frac
            out.append(float(min(max(value, float(a.act_min[f])), act_max)))
        return out


def allocate(n: int, weights: list[float], caps: list[int]) -> list[int]:
    """Split n items over bins in proportion to weights, at most caps[i] each (largest remainder)."""
    take = [0] * len(weights)
    left = min(n, sum(caps))
    while left > 0:
        open_bins = [i for i in range(len(weights)) if take[i] < caps[i]]
        total = sum(weights[i] for i in open_bins) or 1.0
        ideal = {i: left * weights[i] / total for i in open_bins}
        for i in open_bins:
            add = min(int(ideal[i]), caps[i] - take[i])
            take[i] += add
            left -= add
        if left > 0:  # hand out the rest one at a time, largest remainder first
            best = max(open_bins, key=lambda i: (ideal[i] - int(ideal[i]) if take[i] < caps[i] else -1, -i))
            if take[best] < caps[best]:
                take[best] += 1
                left -= 1
    return take

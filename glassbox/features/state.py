"""What the streaming pass keeps per feature, updated one batch at a time in bounded memory.

Per layer, for F features (K top contexts, NB sampling bands of R slots, W window tokens,
NH histogram bins), all as tensors, never one Python object per activation:

    n_fires (F,)        positions where the feature is > 0
    act_sum (F,)        sum of its positive activations (float64)
    act_min (F,)        smallest positive activation
    hist (F, NH)        counts in log-spaced bins (`BuildConfig.edges`)
    top_* (F, K)        the K largest per-row maxima: value, global token index, window (K, W)
    smp_* (F, NB, R)    reservoir samples per band: random key, value, token index, window

A "firing" is a positive activation; TopK sets that keep negative values (circuit-tracer's
TopK) count those as not firing. Positions whose token is special (BOS) are masked out.

Top contexts: each row (one document window) offers its maximum for each feature; the K largest
of all offers are kept, merged with `topk` on [kept | offered]. Reservoirs: every firing gets
a uniform random integer key; keeping the R largest keys per (feature, band) is a uniform
sample without replacement of that band's firings (bottom-k sampling), merged the same way.
Keys come from a generator seeded by (seed, batch, layer), so a resumed build draws the same.

Cost per batch is linear in the number of firings (n = B*T*L0): one `nonzero` over the dense
activations, then sparse ops; a firing whose key cannot enter its reservoir is dropped before
sorting, and only features whose kept contexts or samples changed are rewritten.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields

import torch

from glassbox.features.config import BuildConfig

F16_MAX = 65504.0
KEY_RANGE = 1 << 31  # reservoir keys are uniform integers in [0, KEY_RANGE)


@dataclass
class LayerState:
    n_fires: torch.Tensor  # (F,) int64
    act_sum: torch.Tensor  # (F,) float64
    act_min: torch.Tensor  # (F,) float32, +inf until the first firing
    hist: torch.Tensor  # (F, NH) int64
    top_act: torch.Tensor  # (F, K) float32, -inf = empty
    top_index: torch.Tensor  # (F, K) int64 global token index (row * seq_len + pos), -1 = empty
    top_window: torch.Tensor  # (F, K, W) float16 activations around the max
    smp_key: torch.Tensor  # (F, NB, R) int64 random key, -1 = empty
    smp_act: torch.Tensor  # (F, NB, R) float32
    smp_index: torch.Tensor  # (F, NB, R) int64
    smp_window: torch.Tensor  # (F, NB, R, W) float16

    @classmethod
    def empty(cls, n_features: int, cfg: BuildConfig) -> LayerState:
        Fn, K, NB, R, W = n_features, cfg.top_k, cfg.n_bands, cfg.samples_per_band, cfg.window
        return cls(
            n_fires=torch.zeros(Fn, dtype=torch.int64),
            act_sum=torch.zeros(Fn, dtype=torch.float64),
            act_min=torch.full((Fn,), float("inf")),
            hist=torch.zeros(Fn, cfg.n_hist, dtype=torch.int64),
            top_act=torch.full((Fn, K), float("-inf")),
            top_index=torch.full((Fn, K), -1, dtype=torch.int64),
            top_window=torch.zeros(Fn, K, W, dtype=torch.float16),
            smp_key=torch.full((Fn, NB, R), -1, dtype=torch.int64),
            smp_act=torch.zeros(Fn, NB, R),
            smp_index=torch.full((Fn, NB, R), -1, dtype=torch.int64),
            smp_window=torch.zeros(Fn, NB, R, W, dtype=torch.float16),
        )

    def to_dict(self) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, torch.Tensor]) -> LayerState:
        return cls(**{f.name: data[f.name] for f in fields(cls)})

    @property
    def n_features(self) -> int:
        return int(self.n_fires.shape[0])


def batch_generator(seed: int, batch: int, layer: int) -> torch.Generator:
    """A generator that depends only on (seed, batch, layer): resumed builds draw the same keys."""
    digest = hashlib.blake2b(f"{seed}:{batch}:{layer}".encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "big") >> 1)


@dataclass
class Firings:
    """The positive activations of one batch, sparse: row, position, feature, value (n,) each."""

    b: torch.Tensor
    t: torch.Tensor
    f: torch.Tensor
    v: torch.Tensor

    @classmethod
    def of(cls, acts: torch.Tensor) -> Firings:
        B, T, Fn = acts.shape
        p, f = (acts.view(B * T, Fn) > 0).nonzero(as_tuple=True)
        return cls(b=p // T, t=p % T, f=f, v=acts.view(B * T, Fn)[p, f])


class LayerUpdater:
    """Folds one batch of one layer's activations into its `LayerState`."""

    def __init__(self, cfg: BuildConfig) -> None:
        self.cfg = cfg
        self.edges = cfg.edges()
        self.offsets = torch.arange(cfg.window) - cfg.window_before  # (W,) relative positions

    def update(self, st: LayerState, acts: torch.Tensor, *, first_row: int, gen: torch.Generator) -> None:
        """acts (B, T, F): activations of rows first_row.. (masked positions already 0)."""
        acts = acts.float().contiguous()  # (B, T, F); negative TopK values are not firings
        fir = Firings.of(acts)
        bins = torch.bucketize(fir.v, self.edges, right=True)  # (n,) histogram bin in [0, NH)
        self._counts(st, fir, bins)
        self._top(st, acts, fir, first_row)
        self._samples(st, acts, fir, bins, first_row=first_row, gen=gen)

    # ---- counts --------------------------------------------------------------------------
    def _counts(self, st: LayerState, fir: Firings, bins: torch.Tensor) -> None:
        Fn, NH = st.n_features, self.cfg.n_hist
        st.n_fires += torch.bincount(fir.f, minlength=Fn)
        st.act_sum.index_add_(0, fir.f, fir.v.double())
        st.act_min.scatter_reduce_(0, fir.f, fir.v, reduce="amin")
        st.hist += torch.bincount(fir.f * NH + bins, minlength=Fn * NH).view(Fn, NH)

    # ---- top contexts --------------------------------------------------------------------
    def _top(self, st: LayerState, acts: torch.Tensor, fir: Firings, first_row: int) -> None:
        B, T, Fn = acts.shape
        K = self.cfg.top_k
        key = fir.f * B + fir.b  # (n,) one slot per (feature, row)
        row_max = torch.full((Fn * B,), float("-inf")).scatter_reduce_(0, key, fir.v, reduce="amax")
        at_max = fir.v == row_max[key]
        row_pos = torch.full((Fn * B,), T, dtype=torch.int64)
        row_pos.scatter_reduce_(0, key[at_max], fir.t[at_max], reduce="amin")  # first position of the max
        offer, row_pos = row_max.view(Fn, B), row_pos.view(Fn, B)
        rows = torch.arange(B) + first_row  # (B,)
        offer_index = torch.where(torch.isfinite(offer), rows * T + row_pos, -1)  # (F, B)
        new_act, sel = torch.cat([st.top_act, offer], dim=1).topk(K, dim=1)  # (F, K)
        fresh = (sel >= K) & torch.isfinite(new_act)
        feats = fresh.any(dim=1).nonzero().squeeze(1)  # only these features change
        if feats.numel() == 0:
            return
        s = sel[feats]  # (c, K)
        index = torch.cat([st.top_index[feats], offer_index[feats]], dim=1).gather(1, s)
        window = st.top_window[feats].gather(1, s.clamp(max=K - 1)[..., None].expand(-1, -1, self.cfg.window))
        window[s >= K] = 0
        c, k = fresh[feats].nonzero(as_tuple=True)
        b = s[c, k] - K
        window[c, k] = self._windows(acts, b, row_pos[feats[c], b], feats[c])
        st.top_act[feats], st.top_index[feats], st.top_window[feats] = new_act[feats], index, window

    def _windows(self, acts: torch.Tensor, b: torch.Tensor, t: torch.Tensor,
                 f: torch.Tensor) -> torch.Tensor:
        """(n, W) activations of feature f in row b around position t (zero outside the row)."""
        T = acts.shape[1]
        pos = t[:, None] + self.offsets  # (n, W)
        inside = (pos >= 0) & (pos < T)
        values = acts[b[:, None], pos.clamp(0, T - 1), f[:, None]] * inside
        return values.clamp(max=F16_MAX).half()

    # ---- quantile-band reservoirs ----------------------------------------------------------
    def _samples(self, st: LayerState, acts: torch.Tensor, fir: Firings, bins: torch.Tensor, *,
                 first_row: int, gen: torch.Generator) -> None:
        NB, R, W, T = self.cfg.n_bands, self.cfg.samples_per_band, self.cfg.window, acts.shape[1]
        G = st.n_features * NB
        skey = st.smp_key.view(G, R)
        group = fir.f * NB + self.cfg.band_of_bin(bins)  # (n,)
        keys = torch.randint(0, KEY_RANGE, group.shape, generator=gen)  # (n,)
        live = (keys > skey[group, R - 1]).nonzero().squeeze(1)  # can still enter its reservoir
        if live.numel() == 0:
            return
        group, keys = group[live], keys[live]
        order = (group * KEY_RANGE + (KEY_RANGE - 1 - keys)).argsort()  # group ascending, key descending
        g_sorted = group[order]
        _, counts = torch.unique_consecutive(g_sorted, return_counts=True)
        rank = torch.arange(order.shape[0]) - torch.repeat_interleave(counts.cumsum(0) - counts, counts)
        keep = (rank < R).nonzero().squeeze(1)
        order, g, r = order[keep], g_sorted[keep], rank[keep]
        groups = g.unique()  # only these reservoirs change
        slot = torch.full((G,), -1, dtype=torch.int64)
        slot[groups] = torch.arange(groups.shape[0])
        offer_key = torch.full((groups.shape[0], R), -1, dtype=torch.int64)
        offer_key[slot[g], r] = keys[order]
        offer_src = torch.full((groups.shape[0], R), -1, dtype=torch.int64)
        offer_src[slot[g], r] = live[order]  # index into the firing list
        new_key, sel = torch.cat([skey[groups], offer_key], dim=1).topk(R, dim=1)  # (c, R)
        fresh = sel >= R
        old = sel.clamp(max=R - 1)
        act = st.smp_act.view(G, R)[groups].gather(1, old).masked_fill(fresh, 0.0)
        index = st.smp_index.view(G, R)[groups].gather(1, old).masked_fill(fresh, -1)
        window = st.smp_window.view(G, R, W)[groups].gather(1, old[..., None].expand(-1, -1, W))
        window[fresh] = 0
        c, k = (fresh & (new_key >= 0)).nonzero(as_tuple=True)
        n = offer_src.gather(1, (sel - R).clamp(min=0))[c, k]  # firing of each new sample
        act[c, k] = fir.v[n]
        index[c, k] = (fir.b[n] + first_row) * T + fir.t[n]
        window[c, k] = self._windows(acts, fir.b[n], fir.t[n], fir.f[n])
        skey[groups] = new_key
        st.smp_act.view(G, R)[groups] = act
        st.smp_index.view(G, R)[groups] = index
        st.smp_window.view(G, R, W)[groups] = window

"""Settings of one dashboard build, and the activation bins they imply.

Everything that changes what the streaming pass keeps is in `BuildConfig`, so a resumed
build can check that it continues the same computation (`streaming_fields`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

from glassbox.features.errors import FeatureBuildError

# Fields that only shape the final store (display), not the streaming state.
DISPLAY_FIELDS = ("quantile_cuts", "examples_per_group", "n_logits")


@dataclass(frozen=True)
class BuildConfig:
    """What a build keeps per feature. Defaults suit a 2-core CPU and ~1M tokens."""

    seq_len: int = 128  # tokens per row: BOS + 127 tokens of one document
    batch_size: int = 32  # rows per forward pass (32 halves the CPU cost per token vs 8)
    top_k: int = 20  # top activating contexts kept (at most one per row)
    window_before: int = 24  # context tokens shown before the max token
    window_after: int = 7  # ... and after it
    hist_min: float = 1e-2  # lowest histogram edge; smaller positive activations go to bin 0
    hist_max: float = 1e3  # highest edge; larger activations go to the last bin
    bins_per_decade: int = 8
    bins_per_band: int = 2  # histogram bins per sampling band (reservoir)
    samples_per_band: int = 3  # reservoir size per band
    quantile_cuts: tuple[float, ...] = (0.5, 0.9, 0.99)  # displayed quantile groups (upper CDF cuts)
    examples_per_group: int = 5
    n_logits: int = 10  # top and bottom logits kept
    seed: int = 0  # reservoir keys

    def __post_init__(self) -> None:
        positive = ("seq_len", "batch_size", "top_k", "bins_per_decade", "bins_per_band",
                    "samples_per_band", "examples_per_group", "n_logits")
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise FeatureBuildError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.seq_len < 2:
            raise FeatureBuildError("seq_len must be >= 2 (BOS plus at least one token)")
        if self.window_before < 0 or self.window_after < 0:
            raise FeatureBuildError("window_before and window_after must be >= 0")
        if not 0 < self.hist_min < self.hist_max:
            raise FeatureBuildError(f"need 0 < hist_min < hist_max, got {self.hist_min}, {self.hist_max}")
        if any(not 0 < c < 1 for c in self.quantile_cuts) or list(self.quantile_cuts) != sorted(
                set(self.quantile_cuts)):
            raise FeatureBuildError("quantile_cuts must be increasing values strictly between 0 and 1")

    # ---- derived sizes -------------------------------------------------------------------
    @property
    def window(self) -> int:
        """Tokens in a context window: before + max token + after."""
        return self.window_before + 1 + self.window_after

    @property
    def n_bins(self) -> int:
        """Log-spaced bins between hist_min and hist_max (plus one below and one above)."""
        decades = math.log10(self.hist_max / self.hist_min)
        return max(1, round(decades * self.bins_per_decade))

    @property
    def n_hist(self) -> int:
        return self.n_bins + 2

    @property
    def n_bands(self) -> int:
        return math.ceil(self.n_bins / self.bins_per_band)

    def edges(self) -> torch.Tensor:
        """(n_bins + 1,) bin edges. Bin 0 is (0, e0), bin i is [e_{i-1}, e_i), the last [e_n, inf)."""
        return torch.logspace(math.log10(self.hist_min), math.log10(self.hist_max), self.n_bins + 1,
                              dtype=torch.float64).float()

    def band_of_bin(self, bins: torch.Tensor) -> torch.Tensor:
        """Sampling band of each histogram bin; the under/overflow bins join the edge bands."""
        return ((bins - 1).clamp(min=0) // self.bins_per_band).clamp(max=self.n_bands - 1)

    # ---- (de)serialisation ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["quantile_cuts"] = list(self.quantile_cuts)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BuildConfig:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        if "quantile_cuts" in kwargs:
            kwargs["quantile_cuts"] = tuple(kwargs["quantile_cuts"])
        return cls(**kwargs)

    def streaming_fields(self) -> dict[str, Any]:
        """The settings a resumed build must share with the checkpoint."""
        return {k: v for k, v in self.to_dict().items() if k not in DISPLAY_FIELDS}

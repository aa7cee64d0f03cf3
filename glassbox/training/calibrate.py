"""Before the first step: per-layer scales, and a least-squares affine start for skip + bias.

The affine start solves, per layer, min ||[x, 1] A - y||^2 + ridge on a few thousand tokens
(normal equations in float64). It gives the skip path the best linear approximation of the MLP
at once, so the features spend their capacity on what a linear map cannot do.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class LayerMoments:
    """Running sums for one layer: enough for the scales and the least-squares fit."""

    n: int
    sum_x2: float
    sum_y2: float
    xtx: torch.Tensor  # (d + 1, d + 1) float64, x augmented with a 1
    xty: torch.Tensor  # (d + 1, d) float64
    sum_y: torch.Tensor  # (d,) float64


def new_moments(d: int, device: torch.device) -> LayerMoments:
    z = dict(dtype=torch.float64, device=device)
    return LayerMoments(0, 0.0, 0.0, torch.zeros(d + 1, d + 1, **z), torch.zeros(d + 1, d, **z),
                        torch.zeros(d, **z))


def accumulate(m: LayerMoments, x: torch.Tensor, y: torch.Tensor) -> None:
    """Add tokens x (N, d), y (N, d) (raw units) to the sums."""
    x, y = x.float(), y.float()  # float32 products per batch, float64 sums across batches
    xa = torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)], dim=1)
    m.n += x.shape[0]
    m.sum_x2 += float(x.double().pow(2).sum())
    m.sum_y2 += float(y.double().pow(2).sum())
    m.xtx += (xa.T @ xa).double()
    m.xty += (xa.T @ y).double()
    m.sum_y += y.double().sum(0)


def scales(m: LayerMoments, d: int) -> tuple[float, float]:
    """(s_in, s_out): the RMS per element of input and output."""
    s_in = (m.sum_x2 / max(m.n * d, 1)) ** 0.5
    s_out = (m.sum_y2 / max(m.n * d, 1)) ** 0.5
    return max(s_in, 1e-8), max(s_out, 1e-8)


def affine_fit(m: LayerMoments, s_in: float, s_out: float, *,
               ridge: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """(W_skip (d, d), b_dec (d,)) in normalised units: y/s_out ~= (x/s_in) @ W_skip + b_dec."""
    d = m.xty.shape[1]
    # rescale the sums to normalised units: x_n = x / s_in, y_n = y / s_out
    scale = torch.ones(d + 1, dtype=torch.float64, device=m.xtx.device)
    scale[:d] = 1.0 / s_in
    xtx = m.xtx * scale[:, None] * scale[None, :]
    xty = m.xty * scale[:, None] / s_out
    reg = ridge * m.n * torch.eye(d + 1, dtype=torch.float64, device=xtx.device)
    reg[d, d] = 0.0  # do not shrink the bias
    A = torch.linalg.solve(xtx + reg, xty)
    return A[:d].float(), A[d].float()


def mean_output(m: LayerMoments, s_out: float) -> torch.Tensor:
    """Mean normalised output: the b_dec start without a skip path."""
    return (m.sum_y / max(m.n, 1) / s_out).float()


class Samples:
    """A seeded random sample of calibration tokens per layer (for data-initialised features)."""

    def __init__(self, n_layers: int, n_samples: int, n_batches: int, *, seed: int) -> None:
        self.per_batch = -(-n_samples // max(n_batches, 1))  # ceil
        self.n_samples = n_samples
        self.gen = torch.Generator().manual_seed(seed + 7)
        self.x: list[list[torch.Tensor]] = [[] for _ in range(n_layers)]
        self.y: list[list[torch.Tensor]] = [[] for _ in range(n_layers)]

    def add(self, layer: int, x: torch.Tensor, y: torch.Tensor) -> None:
        if self.n_samples == 0:
            return
        idx = torch.randperm(x.shape[0], generator=self.gen)[: self.per_batch].to(x.device)
        self.x[layer].append(x[idx].float())
        self.y[layer].append(y[idx].float())

    def get(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, d) inputs and outputs, n <= n_samples (raw units)."""
        x, y = torch.cat(self.x[layer]), torch.cat(self.y[layer])
        self.x[layer], self.y[layer] = [], []  # free memory as layers are consumed
        return x[: self.n_samples], y[: self.n_samples]

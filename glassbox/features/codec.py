"""One feature's evidence as a compact blob: a small JSON header and raw little-endian arrays, zlib'd.

    u32 header_len, u32 k (top examples), u32 m (quantile samples)
    header JSON    {"groups": [...], "quantile_values": [...]}
    top_act f32[k]  top_index i64[k]  top_window f16[k, W]
    smp_act f32[m]  smp_index i64[m]  smp_window f16[m, W]   (in group order)
    hist i64[NH]    logit_ids i32[2n] (top n, then bottom n)   logit_values f32[2n]

W, NH and n are the same for every feature of a store (in its manifest), so they are not repeated.
Decoding is a few `np.frombuffer` views: no per-token parsing.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

_HEAD = struct.Struct("<III")


@dataclass
class FeatureBlob:
    header: dict[str, Any]
    top_act: np.ndarray  # (k,) float32
    top_index: np.ndarray  # (k,) int64
    top_window: np.ndarray  # (k, W) float16
    smp_act: np.ndarray  # (m,) float32
    smp_index: np.ndarray  # (m,) int64
    smp_window: np.ndarray  # (m, W) float16
    hist: np.ndarray  # (NH,) int64
    logit_ids: np.ndarray  # (2n,) int32
    logit_values: np.ndarray  # (2n,) float32


@dataclass(frozen=True)
class BlobShape:
    window: int  # W
    n_hist: int  # NH
    n_logits: int  # n


def encode(blob: FeatureBlob, *, level: int = 6) -> bytes:
    header = json.dumps(blob.header, separators=(",", ":")).encode()
    parts = [
        _HEAD.pack(len(header), blob.top_act.shape[0], blob.smp_act.shape[0]), header,
        blob.top_act.astype("<f4").tobytes(), blob.top_index.astype("<i8").tobytes(),
        blob.top_window.astype("<f2").tobytes(),
        blob.smp_act.astype("<f4").tobytes(), blob.smp_index.astype("<i8").tobytes(),
        blob.smp_window.astype("<f2").tobytes(),
        blob.hist.astype("<i8").tobytes(), blob.logit_ids.astype("<i4").tobytes(),
        blob.logit_values.astype("<f4").tobytes(),
    ]
    return zlib.compress(b"".join(parts), level)


def decode(data: bytes, shape: BlobShape) -> FeatureBlob:
    raw = zlib.decompress(data)
    hlen, k, m = _HEAD.unpack_from(raw, 0)
    pos = _HEAD.size
    header = json.loads(raw[pos: pos + hlen])
    pos += hlen
    W, nl = shape.window, 2 * shape.n_logits

    def take(dtype: str, count: int) -> np.ndarray:
        nonlocal pos
        arr = np.frombuffer(raw, dtype=dtype, count=count, offset=pos)
        pos += arr.nbytes
        return arr

    return FeatureBlob(
        header=header,
        top_act=take("<f4", k), top_index=take("<i8", k), top_window=take("<f2", k * W).reshape(k, W),
        smp_act=take("<f4", m), smp_index=take("<i8", m), smp_window=take("<f2", m * W).reshape(m, W),
        hist=take("<i8", shape.n_hist), logit_ids=take("<i4", nl), logit_values=take("<f4", nl),
    )

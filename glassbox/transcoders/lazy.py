"""Read rows of a tensor stored in a safetensors file without loading the whole tensor.

A decoder matrix is (d_transcoder, ..., d_model); a graph touches a few thousand of its
rows. We memory-map the file and copy only the rows asked for, so a 16k-feature set for a
2B model costs megabytes, not gigabytes, until its decoders are actually used.
"""

from __future__ import annotations

import json
import struct
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from glassbox.errors import TranscoderError

_NP_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "F64": np.float64}
_TORCH_VIEW = {"BF16": torch.bfloat16}


def read_header(path: Path) -> tuple[dict, int]:
    """The safetensors JSON header and the byte offset where tensor data starts."""
    with path.open("rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise TranscoderError(f"{path} is not a safetensors file (too short)")
        (n,) = struct.unpack("<Q", raw)
        if n > path.stat().st_size - 8:
            raise TranscoderError(f"{path} is not a safetensors file (header size {n})")
        try:
            header = json.loads(f.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise TranscoderError(f"{path} is not a safetensors file: {exc}") from None
    return header, 8 + n


class LazyRows:
    """Rows of one named tensor in a safetensors file, read on demand."""

    def __init__(self, path: Path, name: str) -> None:
        self.path = Path(path)
        self.name = name
        header, self._data_start = read_header(self.path)
        if name not in header:
            raise TranscoderError(f"{self.path} has no tensor {name!r}")
        info = header[name]
        self.st_dtype: str = info["dtype"]
        if self.st_dtype not in _NP_DTYPES:
            raise TranscoderError(f"{self.path}:{name} has unsupported dtype {self.st_dtype}")
        self.shape: tuple[int, ...] = tuple(info["shape"])
        self._offsets = info["data_offsets"]

    @cached_property
    def _mmap(self) -> np.ndarray:
        start = self._data_start + self._offsets[0]
        return np.memmap(self.path, dtype=_NP_DTYPES[self.st_dtype], mode="r", offset=start,
                         shape=self.shape)

    def _to_torch(self, arr: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(arr))
        view = _TORCH_VIEW.get(self.st_dtype)
        return t.view(view) if view is not None else t

    def rows(self, idx: torch.Tensor, *, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """Rows idx (n,) -> (n, *shape[1:]) in dtype on device."""
        order = idx.detach().cpu().numpy()
        return self._to_torch(self._mmap[order]).to(device=device, dtype=dtype)

    def full(self, *, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        # a writable copy: a tensor over the read-only map would share memory nobody may write
        return self._to_torch(np.array(self._mmap)).to(device=device, dtype=dtype)


class DenseRows:
    """The same interface over a tensor already in memory (random or trained transcoders)."""

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor = tensor
        self.shape = tuple(tensor.shape)

    def rows(self, idx: torch.Tensor, *, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        return self.tensor[idx.to(self.tensor.device)].to(device=device, dtype=dtype)

    def full(self, *, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        return self.tensor.to(device=device, dtype=dtype)

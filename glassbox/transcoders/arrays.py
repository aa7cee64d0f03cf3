"""Arrays stored in safetensors and .npz files, read without loading them, and safetensors
files written block by block.

Converting a public transcoder set means transposing encoders of up to (d_model x 262k)
floats per layer. Reading through memory maps and writing in row blocks keeps the memory a
conversion needs at a few tens of megabytes, whatever the width.
"""

from __future__ import annotations

import json
import struct
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from math import prod
from pathlib import Path

import numpy as np

from glassbox.errors import TranscoderError
from glassbox.transcoders.lazy import read_header

# safetensors dtype -> numpy dtype holding its bytes (bf16 travels as raw uint16)
NP_OF_ST = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16}
_ST_OF_NP = {np.dtype(np.float64): "F64", np.dtype(np.float32): "F32", np.dtype(np.float16): "F16"}
BLOCK_BYTES = 64 << 20


@dataclass
class StoredArray:
    """One array of a file: shape, safetensors dtype, and its values on demand (memory-mapped
    where the file stores it plainly)."""

    shape: tuple[int, ...]
    st_dtype: str
    _load: Callable[[], np.ndarray]

    @cached_property
    def values(self) -> np.ndarray:
        return self._load()

    @property
    def ndim(self) -> int:
        return len(self.shape)


def safetensors_arrays(path: Path) -> dict[str, StoredArray]:
    header, start = read_header(path)
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        st = info["dtype"]
        if st not in NP_OF_ST:
            raise TranscoderError(f"{path}: tensor {name!r} has unsupported dtype {st}")
        shape = tuple(info["shape"])
        offset = start + info["data_offsets"][0]
        out[name] = StoredArray(shape, st, _memmap_loader(path, NP_OF_ST[st], offset, shape, False))
    return out


def npz_arrays(path: Path) -> dict[str, StoredArray]:
    """Arrays of an .npz archive; members stored uncompressed (numpy.savez) are memory-mapped."""
    try:
        with zipfile.ZipFile(path) as zf:
            return {info.filename.removesuffix(".npy"): _npz_member(path, zf, info)
                    for info in zf.infolist() if info.filename.endswith(".npy")}
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise TranscoderError(f"cannot read {path}: {exc}") from None


def _npz_member(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> StoredArray:
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        shape, fortran, dtype = (np.lib.format.read_array_header_1_0(f) if version == (1, 0)
                                 else np.lib.format.read_array_header_2_0(f))
        array_start = f.tell()
    dtype = np.dtype(dtype)
    if dtype not in _ST_OF_NP:
        raise TranscoderError(f"{path}: array {info.filename!r} has unsupported dtype {dtype}")
    shape = tuple(shape)
    if info.compress_type == zipfile.ZIP_STORED:
        offset = _member_data_offset(path, info) + array_start
        return StoredArray(shape, _ST_OF_NP[dtype], _memmap_loader(path, dtype, offset, shape, fortran))

    def load() -> np.ndarray:
        with zipfile.ZipFile(path) as z, z.open(info) as f:
            return np.lib.format.read_array(f)

    return StoredArray(shape, _ST_OF_NP[dtype], load)


def _member_data_offset(path: Path, info: zipfile.ZipInfo) -> int:
    """Where a stored zip member's bytes start: after its local header, name and extra field."""
    with path.open("rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)
    if local[:4] != b"PK\x03\x04":
        raise TranscoderError(f"{path}: bad zip local header for {info.filename!r}")
    name_len, extra_len = struct.unpack("<HH", local[26:30])
    return info.header_offset + 30 + name_len + extra_len


def _memmap_loader(path: Path, dtype, offset: int, shape: tuple[int, ...], fortran: bool):
    def load() -> np.ndarray:
        if prod(shape) == 0:
            return np.zeros(shape, dtype=dtype)
        return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape,
                         order="F" if fortran else "C")
    return load


# ---- writing ---------------------------------------------------------------------------------

@dataclass
class OutTensor:
    """A tensor to write: its name, safetensors dtype, shape and a source of C-order row blocks."""

    name: str
    st_dtype: str
    shape: tuple[int, ...]
    blocks: Callable[[], Iterator[np.ndarray]]

    @property
    def nbytes(self) -> int:
        return prod(self.shape) * np.dtype(NP_OF_ST[self.st_dtype]).itemsize


def out_tensor(name: str, arr: StoredArray, *, transpose: bool = False,
               index: tuple | None = None) -> OutTensor:
    """`arr` (optionally sliced by `index`, then transposed) as an OutTensor written in blocks."""
    shape = arr.shape
    if index is not None:
        shape = np.broadcast_to(np.zeros((), np.bool_), shape)[index].shape  # no allocation
    if transpose:
        if len(shape) != 2:
            raise TranscoderError(f"cannot transpose {name}: shape {shape}")
        shape = (shape[1], shape[0])

    def blocks() -> Iterator[np.ndarray]:
        src = arr.values if index is None else arr.values[index]
        yield from row_blocks(src.T if transpose else src)

    return OutTensor(name, arr.st_dtype, tuple(shape), blocks)


def array_tensor(name: str, values: np.ndarray, st_dtype: str) -> OutTensor:
    """A small in-memory array as an OutTensor."""
    return OutTensor(name, st_dtype, tuple(values.shape), lambda: iter([values]))


def row_blocks(arr: np.ndarray) -> Iterator[np.ndarray]:
    """C-contiguous blocks of leading-axis rows of about BLOCK_BYTES each."""
    if arr.ndim == 0 or arr.shape[0] == 0:
        yield np.ascontiguousarray(arr)
        return
    row_bytes = max(1, arr[0].size * arr.itemsize)
    step = max(1, BLOCK_BYTES // row_bytes)
    for start in range(0, arr.shape[0], step):
        yield np.ascontiguousarray(arr[start:start + step])


def write_safetensors(path: Path, tensors: list[OutTensor], metadata: dict[str, str] | None = None) -> None:
    """Write a safetensors file (readable by safetensors.safe_open) one row block at a time."""
    header: dict = {"__metadata__": {"format": "pt", **(metadata or {})}}
    offset = 0
    for t in tensors:
        header[t.name] = {"dtype": t.st_dtype, "shape": list(t.shape),
                          "data_offsets": [offset, offset + t.nbytes]}
        offset += t.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for t in tensors:
            want, written = np.dtype(NP_OF_ST[t.st_dtype]), 0
            for block in t.blocks():
                if block.dtype != want:
                    raise TranscoderError(f"{t.name}: block dtype {block.dtype}, expected {want}")
                f.write(memoryview(np.ascontiguousarray(block)).cast("B"))
                written += block.nbytes
            if written != t.nbytes:
                raise TranscoderError(f"{t.name}: wrote {written} bytes, expected {t.nbytes}")

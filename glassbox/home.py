"""Where Glassbox keeps its files: converted models, transcoders, corpora, dashboards.

One folder, `GLASSBOX_HOME`, defaulting to the user's cache directory, so that a
model pulled once is found by the CLI, the server and every worker on the machine.
"""

from __future__ import annotations

import os
from pathlib import Path


def glassbox_home() -> Path:
    """The Glassbox home folder (created on first use)."""
    env = os.environ.get("GLASSBOX_HOME")
    if env:
        home = Path(env).expanduser()
    else:
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        home = Path(cache) / "glassbox"
    home.mkdir(parents=True, exist_ok=True)
    return home


def home_subdir(name: str) -> Path:
    """A named sub-folder of the home folder (models, transcoders, corpora, ...)."""
    path = glassbox_home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path

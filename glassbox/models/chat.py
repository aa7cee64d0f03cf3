"""Whether a model's tokenizer has a chat template, read from its files without loading it.

A server lists its models on every page that starts a trace; loading each tokenizer (or the
whole model) to find out which accept chat messages would cost seconds per model. The files
transformers reads the template from say the same: `chat_template.jinja`, the legacy
`chat_template.json`, `additional_chat_templates/`, or a `chat_template` entry in
`tokenizer_config.json`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from glassbox.errors import ModelNotAvailableError

TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json")
TEMPLATE_DIR = "additional_chat_templates"
TOKENIZER_CONFIG = "tokenizer_config.json"

Finder = Callable[[str], Path | None]  # file name -> its local path, or None when absent


def has_chat_template(name_or_path: str | Path) -> bool | None:
    """True or False for a local folder, a pulled demo model or a hub model in the local
    cache; None when the files are not on this machine (a demo model not pulled yet, a hub id
    never downloaded)."""
    from glassbox.models import demo

    try:
        source = demo.resolve(str(name_or_path))
    except ModelNotAvailableError:
        return None
    folder = Path(source)
    if folder.is_dir():
        if (folder / TEMPLATE_DIR).is_dir() and any((folder / TEMPLATE_DIR).iterdir()):
            return True
        return _from_files(lambda name: folder / name if (folder / name).is_file() else None)
    return _from_hub_cache(source)


def _from_files(find: Finder) -> bool | None:
    for name in TEMPLATE_FILES:
        path = find(name)
        if path is not None and path.stat().st_size > 0:
            return True
    config = find(TOKENIZER_CONFIG)
    if config is None:
        return False
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return bool(isinstance(data, dict) and data.get("chat_template"))


def _from_hub_cache(repo_id: str) -> bool | None:
    """The answer from the Hugging Face cache alone (never a download); None when the cache
    does not hold the model's tokenizer files."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found: dict[str, Path | None] = {}
    for name in (*TEMPLATE_FILES, TOKENIZER_CONFIG):
        try:
            hit = try_to_load_from_cache(repo_id, name)
        except ValueError:  # not a repository id
            return None
        found[name] = Path(hit) if isinstance(hit, str) else None
    if found[TOKENIZER_CONFIG] is None and not any(found[name] for name in TEMPLATE_FILES):
        return None
    return _from_files(found.get)

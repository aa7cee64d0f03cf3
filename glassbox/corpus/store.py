"""On-disk layout of a built corpus.

    <corpora>/<name>/manifest.json
    <corpora>/<name>/shards/<source>.<split>.<nnnn>.jsonl.gz   # {"text": ..., "source": ...} per line

Shards are written with a fixed gzip timestamp, so the same inputs and seed give the same bytes.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from glassbox.corpus.errors import CorpusError
from glassbox.home import home_subdir

MANIFEST = "manifest.json"
FORMAT = "glassbox-corpus"
SPLITS = ("train", "test")


def corpora_dir() -> Path:
    """`GLASSBOX_HOME/corpora`, where built corpora live."""
    return home_subdir("corpora")


def write_shards(folder: Path, source: str, split: str, docs: Sequence[str], *, shard_docs: int) -> list[str]:
    """Write `docs` as gzipped JSON lines, `shard_docs` per file; returns paths relative to `folder`."""
    names = []
    shards = folder / "shards"
    shards.mkdir(parents=True, exist_ok=True)
    for index, start in enumerate(range(0, len(docs), shard_docs)):
        name = f"shards/{source}.{split}.{index:04d}.jsonl.gz"
        with open(folder / name, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
            with io.TextIOWrapper(gz, encoding="utf-8") as out:
                for text in docs[start: start + shard_docs]:
                    out.write(json.dumps({"text": text, "source": source}, ensure_ascii=False) + "\n")
        names.append(name)
    return names


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a .jsonl or .jsonl.gz file; a line without a string `text` is an error."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise CorpusError(f"{path}:{number}: not JSON ({exc})") from exc
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise CorpusError(f"{path}:{number}: expected an object with a string 'text'")
            yield record


def load_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of a built corpus folder, or None if `folder` is not one."""
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except ValueError as exc:
        raise CorpusError(f"{path} is not valid JSON: {exc}") from exc
    return manifest if manifest.get("format") == FORMAT else None


def find_corpus(name_or_path: str | Path) -> Path | None:
    """A built corpus folder given its folder or its name in the home folder."""
    path = Path(name_or_path).expanduser()
    if path.is_dir() and load_manifest(path) is not None:
        return path
    if isinstance(name_or_path, str) and "/" not in name_or_path and name_or_path not in (".", ".."):
        candidate = corpora_dir() / name_or_path
        if load_manifest(candidate) is not None:
            return candidate
    return None


def list_corpora() -> list[dict[str, Any]]:
    """Manifests (plus `path`) of the corpora built in the home folder."""
    rows = []
    for child in sorted(corpora_dir().iterdir()):
        if child.name.startswith(".") or not child.is_dir():
            continue
        manifest = load_manifest(child)
        if manifest is not None:
            rows.append({**manifest, "path": str(child)})
    return rows

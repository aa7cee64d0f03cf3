"""Build an offline corpus: fetch -> extract units -> deduplicate -> pack -> shuffle/split -> shards.

    path = build_corpus("offline", tokenizer="gemma-3-270m")

A name in recipes.RECIPES chooses its sources and weights; other names need `sources`.
Held-out recipes put every document in the test split. A training build first reads every
held-out source and treats its text as already seen, so no held-out unit or paragraph can
enter a training corpus (the manifest's `deduplicated_against` lists what was read).

Per source, in registry order:
1. fetch its packages into a temporary folder (sources sharing packages share the download);
2. extract cleaned units (entries, chapters, pages, ...);
3. deduplicate: a unit whose normalised text was seen before is dropped, and so is every
   paragraph of at least `min_dedup_chars` characters seen before, in any source (shorter
   paragraphs such as stage directions repeat legitimately); a unit left with under a quarter
   of its text is dropped;
4. pack units into documents of at most `doc_chars` characters (long units are cut at
   paragraph boundaries, short ones are grouped);
5. shuffle the documents with `seed` and hold out `test_fraction` of them as the test split;
6. write shards and record counts (documents, characters, tokens when a tokenizer is given).

A source that cannot be fetched or read is skipped and listed in the manifest under
`failed_sources`; the build fails only when no source worked. The corpus folder appears
atomically (built in a temporary sibling, then renamed).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from glassbox.corpus import clean, fetch, store
from glassbox.corpus.errors import CorpusError, SourceUnavailableError
from glassbox.corpus.sources import SOURCES, Source

logger = logging.getLogger(__name__)

DEFAULT_NAME = "offline"  # measured better on held-out text than offline-en (bench/RESULTS.md)
MIX_MEANING = (
    "weights are the share of characters each source gets in a stream read with iter_texts: sources "
    "are interleaved at random, each drawn in proportion to weight / mean document length, until one "
    "runs out; exhausted sources drop out and the remaining weights are renormalised"
)
_SOURCE_ERRORS = (SourceUnavailableError, OSError, ValueError, UnicodeError, subprocess.SubprocessError)


@dataclass
class Deduplicator:
    """Exact deduplication of units and of long paragraphs, across all sources of a build."""

    min_chars: int = 64
    seen: set[bytes] = field(default_factory=set)
    units_dropped: int = 0
    paragraphs_dropped: int = 0

    def __call__(self, unit: str) -> str | None:
        """The unit without repeated paragraphs, or None if it is (mostly) a repeat."""
        unit_key = clean.dedup_key(unit)
        if unit_key in self.seen:
            self.units_dropped += 1
            return None
        parts = clean.paragraphs(unit)
        kept = [p for p in parts if self._first_time(p)]
        self.seen.add(unit_key)
        if len(kept) == len(parts):
            return unit
        text = "\n\n".join(kept)
        if len(text) < len(unit) / 4:
            self.units_dropped += 1
            return None
        return text

    def _first_time(self, paragraph: str) -> bool:
        if clean.normalized_length(paragraph) < self.min_chars:
            return True
        key = clean.dedup_key(paragraph)
        if key in self.seen:
            self.paragraphs_dropped += 1
            return False
        self.seen.add(key)
        return True


def build_corpus(
    name: str = DEFAULT_NAME,
    *,
    sources: Sequence[str] | None = None,
    weights: Mapping[str, float] | None = None,
    seed: int = 0,
    test_fraction: float = 0.04,
    doc_chars: int = 6000,
    min_dedup_chars: int = 64,
    shard_docs: int = 2000,
    tokenizer: str | Any | None = None,
    out_dir: Path | None = None,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Build corpus `name` under `out_dir` (default GLASSBOX_HOME/corpora); returns its folder.

    An existing corpus of that name is returned as is unless `force`.
    """
    from glassbox.corpus.recipes import RECIPES

    recipe = RECIPES.get(name)
    if sources is None:
        if recipe is None:
            raise CorpusError(f"{name!r} is not a known corpus ({', '.join(RECIPES)}); give its sources")
        sources, weights = list(recipe.weights), dict(recipe.weights) | dict(weights or {})
    elif recipe is not None:  # a known corpus with sources added or removed keeps its weights
        weights = {s: recipe.weights[s] for s in sources if s in recipe.weights} | dict(weights or {})
    chosen = _choose_sources(sources, weights)
    heldout = all(source.heldout for source, _ in chosen)
    if not heldout and any(source.heldout for source, _ in chosen):
        raise CorpusError("held-out sources cannot be part of a training corpus: "
                          + ", ".join(s.name for s, _ in chosen if s.heldout))
    if heldout:
        test_fraction = 1.0
    _check_options(name, test_fraction, doc_chars, shard_docs)
    parent = out_dir or store.corpora_dir()
    parent.mkdir(parents=True, exist_ok=True)
    target = parent / name
    if store.load_manifest(target) is not None and not force:
        logger.info("corpus %s already exists at %s", name, target)
        return target
    if target.exists() and not force:
        raise CorpusError(f"{target} exists and is not a built corpus; remove it or build with force")
    tok = _load_tokenizer(tokenizer)
    with tempfile.TemporaryDirectory(prefix=f".build-{name}-", dir=parent) as tmp:
        work = Path(tmp)
        settings = {"seed": seed, "test_fraction": test_fraction, "doc_chars": doc_chars,
                    "min_dedup_chars": min_dedup_chars, "shard_docs": shard_docs}
        manifest = _build_into(work / "corpus", work / "fetch", chosen, settings, tok, progress=progress,
                               exclude=() if heldout else [s for s in SOURCES.values() if s.heldout])
        manifest.update(name=name, tokenizer=_tokenizer_name(tokenizer))
        (work / "corpus" / store.MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if target.exists():
            os.rename(target, work / "previous")
        os.rename(work / "corpus", target)
    return target


def _choose_sources(names: Sequence[str], weights: Mapping[str, float] | None) -> list[tuple[Source, float]]:
    names = list(names)
    if not names:
        raise CorpusError("no sources given")
    unknown = sorted(set(names) - set(SOURCES))
    if unknown:
        raise CorpusError(f"unknown source(s) {', '.join(unknown)}; known: {', '.join(SOURCES)}")
    weights = dict(weights or {})
    extra = sorted(set(weights) - set(names))
    if extra:
        raise CorpusError(f"weights given for sources not in the build: {', '.join(extra)}")
    chosen = [(SOURCES[n], float(weights.get(n, SOURCES[n].weight))) for n in dict.fromkeys(names)]
    if any(w < 0 or not math.isfinite(w) for _, w in chosen) or sum(w for _, w in chosen) <= 0:
        raise CorpusError("weights must be finite, >= 0, and not all 0")
    return chosen


def _check_options(name: str, test_fraction: float, doc_chars: int, shard_docs: int) -> None:
    if not name or "/" in name or name.startswith("."):
        raise CorpusError(f"corpus name {name!r} must be a plain folder name")
    if not 0 <= test_fraction <= 1:
        raise CorpusError("test_fraction must be in [0, 1]")
    if doc_chars < 200 or shard_docs < 1:
        raise CorpusError("doc_chars must be >= 200 and shard_docs >= 1")


def _build_into(folder: Path, downloads: Path, chosen: list[tuple[Source, float]], settings: dict[str, Any],
                tok: Any, *, progress: bool, exclude: Sequence[Source] = ()) -> dict[str, Any]:
    from tqdm.auto import tqdm

    started = time.monotonic()
    folder.mkdir(parents=True)
    dedup = Deduplicator(settings["min_dedup_chars"])
    fetched: _Fetched = {}
    excluded = [_prime(dedup, source, downloads, fetched) for source in exclude]
    built, failed = [], []
    for source, weight in tqdm(chosen, desc="corpus sources", unit="source", disable=not progress):
        try:
            root, versions = _fetch(source, downloads, fetched)
            entry = _build_source(folder, source, root, dedup, settings, tok, progress=progress)
        except _SOURCE_ERRORS as exc:
            logger.warning("source %s skipped: %s", source.name, exc)
            failed.append({"name": source.name, "error": str(exc)})
            continue
        built.append({**entry, "weight": weight, "origin": _origin(source, versions)})
    if not built:
        details = "; ".join(f"{f['name']}: {f['error']}" for f in failed)
        raise CorpusError(f"no corpus source could be built ({details})")
    total_weight = sum(e["weight"] for e in built)
    for entry in built:
        entry["weight"] = round(entry["weight"] / total_weight, 6)
    manifest = _manifest(built, failed, dedup, settings, time.monotonic() - started)
    if exclude:
        manifest["deduplicated_against"] = excluded
    return manifest


def _prime(dedup: Deduplicator, source: Source, downloads: Path, fetched: _Fetched) -> dict[str, Any]:
    """Mark every unit and long paragraph of held-out `source` as seen (not written anywhere)."""
    try:
        root, _ = _fetch(source, downloads, fetched)
        units = sum(1 for unit in source.extract(root) if dedup(unit))
    except _SOURCE_ERRORS as exc:
        logger.warning("held-out source %s could not be read for deduplication: %s", source.name, exc)
        return {"name": source.name, "error": str(exc)}
    dedup.units_dropped = dedup.paragraphs_dropped = 0
    return {"name": source.name, "units": units}


_Fetched = dict[tuple[str, ...], tuple[Path, dict[str, str]] | Exception]


def _fetch(source: Source, downloads: Path, fetched: _Fetched) -> tuple[Path, dict[str, str]]:
    """Download (once per fetch key) and return (root folder, {package: version})."""
    key = source.fetch_key
    if key not in fetched:
        try:
            fetched[key] = _download(source, downloads / f"{len(fetched):02d}")
        except _SOURCE_ERRORS as exc:
            fetched[key] = exc
    result = fetched[key]
    if isinstance(result, Exception):
        raise SourceUnavailableError(str(result))
    return result


def _download(source: Source, dest: Path) -> tuple[Path, dict[str, str]]:
    if source.apt:
        return dest, fetch.apt_fetch(source.apt, dest)
    if source.pypi_sdist:
        return dest, fetch.pypi_sdist_fetch(source.pypi_sdist, dest)
    return Path("/"), {}


def _origin(source: Source, versions: dict[str, str]) -> dict[str, Any]:
    kind = "debian" if source.apt else "pypi-sdist" if source.pypi_sdist else "local"
    return {"kind": kind, "packages": versions, "license": source.license}


def _build_source(folder: Path, source: Source, root: Path, dedup: Deduplicator, settings: dict[str, Any],
                  tok: Any, *, progress: bool) -> dict[str, Any]:
    from tqdm.auto import tqdm

    started = time.monotonic()
    before = (dedup.units_dropped, dedup.paragraphs_dropped)
    raw_units = tqdm(source.extract(root), desc=f"  {source.name}", unit="unit", leave=False,
                     disable=not progress)
    units = [kept for unit in raw_units if (kept := dedup(unit))]
    if not units:
        raise SourceUnavailableError(f"{source.name}: no text left after cleaning and deduplication")
    docs = list(clean.pack(units, max_chars=settings["doc_chars"], joiner=source.joiner))
    train, test = split_documents(docs, seed=settings["seed"], source=source.name,
                                  test_fraction=settings["test_fraction"])
    entry: dict[str, Any] = {"name": source.name, "description": source.description, "units": len(units),
                             "documents": {}, "characters": {}, "tokens": {}, "shards": {}}
    for split, split_docs in (("train", train), ("test", test)):
        entry["shards"][split] = store.write_shards(folder, source.name, split, split_docs,
                                                    shard_docs=settings["shard_docs"])
        entry["documents"][split] = len(split_docs)
        entry["characters"][split] = sum(map(len, split_docs))
        entry["tokens"][split] = count_tokens(tok, split_docs) if tok is not None else None
    entry["dedup"] = {"units_dropped": dedup.units_dropped - before[0],
                      "paragraphs_dropped": dedup.paragraphs_dropped - before[1]}
    entry["seconds"] = round(time.monotonic() - started, 1)
    logger.info("%s: %d units -> %d train / %d test documents",
                source.name, len(units), len(train), len(test))
    return entry


def split_documents(docs: list[str], *, seed: int, source: str,
                    test_fraction: float) -> tuple[list[str], list[str]]:
    """Shuffle with a seed (per source, so adding a source leaves the others' splits alone) and cut."""
    order = list(docs)
    random.Random(f"{seed}:{source}").shuffle(order)
    n_test = round(len(order) * test_fraction)
    if test_fraction > 0 and len(order) >= 2:
        n_test = max(n_test, 1)
    return order[n_test:], order[:n_test]


def count_tokens(tokenizer: Any, texts: Iterable[str], *, batch: int = 256) -> int:
    """Tokens in `texts` without special tokens (fast tokenizers encode a batch in parallel)."""
    total, chunk = 0, []
    for text in texts:
        chunk.append(text)
        if len(chunk) == batch:
            total += sum(map(len, tokenizer(chunk, add_special_tokens=False)["input_ids"]))
            chunk = []
    if chunk:
        total += sum(map(len, tokenizer(chunk, add_special_tokens=False)["input_ids"]))
    return total


def _load_tokenizer(tokenizer: str | Any | None) -> Any:
    if tokenizer is None or not isinstance(tokenizer, str | Path):
        return tokenizer
    from transformers import AutoTokenizer

    from glassbox.models.demo import resolve

    try:
        return AutoTokenizer.from_pretrained(resolve(str(tokenizer)))
    except OSError as exc:
        raise CorpusError(f"cannot load tokenizer {tokenizer!r}: {exc}") from exc


def _tokenizer_name(tokenizer: str | Any | None) -> str | None:
    if tokenizer is None or isinstance(tokenizer, str | Path):
        return None if tokenizer is None else str(tokenizer)
    return getattr(tokenizer, "name_or_path", type(tokenizer).__name__)


def _manifest(built: list[dict[str, Any]], failed: list[dict[str, str]], dedup: Deduplicator,
              settings: dict[str, Any], seconds: float) -> dict[str, Any]:
    import glassbox

    def total(key: str) -> int | None:
        values = [e[key][s] for e in built for s in store.SPLITS]
        return None if any(v is None for v in values) else sum(values)

    return {
        "format": store.FORMAT,
        "format_version": 1,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "glassbox_version": glassbox.__version__,
        **settings,
        "mix": {"weights": {e["name"]: e["weight"] for e in built}, "meaning": MIX_MEANING},
        "sources": built,
        "failed_sources": failed,
        "totals": {key: total(key) for key in ("documents", "characters", "tokens")},
        "dedup": {"units_dropped": dedup.units_dropped, "paragraphs_dropped": dedup.paragraphs_dropped},
        "build_seconds": round(seconds, 1),
    }

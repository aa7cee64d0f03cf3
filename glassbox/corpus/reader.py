"""Reading text for training and feature dashboards: `iter_texts` and `token_batches`.

`iter_texts(source)` accepts, in this order of precedence:
- a built corpus (its folder, or its name under GLASSBOX_HOME/corpora): sources are interleaved
  by their mix weights (see `glassbox.corpus.build.MIX_MEANING`), documents in seeded order;
- a .txt/.md file (cut into documents of at most 6,000 characters at paragraph breaks), a
  .jsonl/.jsonl.gz file (one document per line, field "text"), or a folder of such files;
  for these, a document is in the test split when a hash of its text says so (4%), so the split
  is stable whatever the seed or file order;
- a Hugging Face dataset id (`name` or `name:config`), streamed with `datasets` if installed.

`token_batches` turns texts into (batch, seq_len) LongTensors: each row is BOS followed by
seq_len - 1 consecutive tokens of one document (the transcoder-training convention); a
document's tail shorter than a window is dropped, texts are never concatenated.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from glassbox.corpus import clean, store
from glassbox.corpus.errors import CorpusError

SPLITS = ("train", "test", "all")
TEXT_SUFFIXES = (".txt", ".md")
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz")
FILE_DOC_CHARS = 6000
HOLDOUT_PER_MILLE = 40  # 4% of documents of files and folders are the test split


def iter_texts(source: str | Path, *, split: str = "train", seed: int = 0,
               weights: Mapping[str, float] | None = None) -> Iterator[str]:
    """Documents of `source` for `split` ("train", "test" or "all"), in a seeded order."""
    if split not in SPLITS:
        raise CorpusError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    corpus = store.find_corpus(source)
    if corpus is not None:
        return _iter_built(corpus, split=split, seed=seed, weights=weights)
    if weights:
        raise CorpusError("weights apply to built corpora only")
    path = Path(source).expanduser()
    if path.is_file():
        return _iter_files([path], split=split, seed=seed)
    if path.is_dir():
        return _iter_files(_text_files(path), split=split, seed=seed)
    if _looks_like_path(str(source)):
        raise CorpusError(f"no such file, folder or built corpus: {source}")
    return _iter_hf(str(source), split=split, seed=seed)


def _looks_like_path(text: str) -> bool:
    return text.startswith(("/", "./", "../", "~")) or text.endswith(TEXT_SUFFIXES + JSONL_SUFFIXES)


# ---- built corpora ----------------------------------------------------------------------------

def _iter_built(folder: Path, *, split: str, seed: int, weights: Mapping[str, float] | None) -> Iterator[str]:
    manifest = store.load_manifest(folder) or {}
    sources = {s["name"]: s for s in manifest.get("sources", [])}
    chosen = _weights(sources, weights)  # checked now, not at the first next()
    splits = store.SPLITS if split == "all" else (split,)
    return _interleave(folder, sources, chosen, splits, seed)


def _interleave(folder: Path, sources: dict[str, dict[str, Any]], chosen: dict[str, float],
                splits: tuple[str, ...], seed: int) -> Iterator[str]:
    streams: dict[str, Iterator[str]] = {}
    rates: dict[str, float] = {}
    for name, weight in chosen.items():
        entry = sources[name]
        docs = sum(entry["documents"][s] for s in splits)
        if weight <= 0 or docs == 0:
            continue
        chars = sum(entry["characters"][s] for s in splits)
        streams[name] = _source_docs(folder, entry, splits, seed)
        rates[name] = weight / (chars / docs)  # documents per draw, so characters follow the weights
    rng = random.Random(f"{seed}:mix")
    while streams:
        names = list(streams)
        name = rng.choices(names, weights=[rates[n] for n in names])[0]
        text = next(streams[name], None)
        if text is None:
            del streams[name]
        else:
            yield text


def _weights(sources: dict[str, dict[str, Any]], weights: Mapping[str, float] | None) -> dict[str, float]:
    if not weights:
        return {name: float(entry["weight"]) for name, entry in sources.items()}
    unknown = sorted(set(weights) - set(sources))
    if unknown:
        raise CorpusError(f"corpus has no source(s) {', '.join(unknown)}; it has {', '.join(sources)}")
    if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise CorpusError("weights must be >= 0 and not all 0")
    return {name: float(weights.get(name, 0.0)) for name in sources}


def _source_docs(folder: Path, entry: dict[str, Any], splits: tuple[str, ...], seed: int) -> Iterator[str]:
    rng = random.Random(f"{seed}:{entry['name']}")
    shards = [name for s in splits for name in entry["shards"][s]]
    rng.shuffle(shards)
    for name in shards:
        path = folder / name
        if not path.is_file():
            raise CorpusError(f"corpus shard missing: {path}")
        texts = [record["text"] for record in store.read_jsonl(path)]
        rng.shuffle(texts)
        yield from texts


# ---- files and folders ------------------------------------------------------------------------

def _text_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and _is_text_file(p)
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if not files:
        raise CorpusError(f"no .txt, .md or .jsonl files in {folder}")
    return files


def _is_text_file(path: Path) -> bool:
    return path.name.endswith(TEXT_SUFFIXES + JSONL_SUFFIXES)


def _iter_files(files: list[Path], *, split: str, seed: int) -> Iterator[str]:
    rng = random.Random(f"{seed}:files")
    order = list(files)
    rng.shuffle(order)
    for path in order:
        docs = [d for d in _file_docs(path) if split == "all" or in_test_split(d) == (split == "test")]
        rng.shuffle(docs)
        yield from docs


def _file_docs(path: Path) -> list[str]:
    if path.name.endswith(JSONL_SUFFIXES):
        return [r["text"] for r in store.read_jsonl(path) if r["text"].strip()]
    try:
        text = clean.normalize_text(path.read_text(encoding="utf-8", errors="replace"))
    except OSError as exc:
        raise CorpusError(f"cannot read {path}: {exc}") from exc
    return list(clean.split_long(text, FILE_DOC_CHARS)) if text else []


def in_test_split(text: str) -> bool:
    """Stable hold-out for files and folders: 4% of documents, chosen by a hash of the text."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 1000 < HOLDOUT_PER_MILLE


# ---- Hugging Face datasets --------------------------------------------------------------------

def _iter_hf(name: str, *, split: str, seed: int) -> Iterator[str]:
    """Stream a Hugging Face dataset's "text" column (checked now, read lazily)."""
    try:
        import datasets
    except ImportError:
        raise CorpusError(
            f"{name!r} is not a built corpus (`glassbox corpus list`), a file or a folder; to read it as a "
            "Hugging Face dataset, install `datasets` (and be online)"
        ) from None
    path, _, config = name.partition(":")
    try:
        data = datasets.load_dataset(path, config or None, split=split, streaming=True)
    except Exception as exc:  # datasets raises many types (network, missing split, bad name)
        raise CorpusError(f"cannot load Hugging Face dataset {name!r} split {split!r}: {exc}") from exc
    return _hf_texts(data.shuffle(seed=seed, buffer_size=10_000), name)


def _hf_texts(records: Iterable[Mapping[str, Any]], name: str) -> Iterator[str]:
    for record in records:
        value = record.get("text")
        if not isinstance(value, str):
            raise CorpusError(f"dataset {name!r} has no string column 'text'")
        if value.strip():
            yield value


# ---- token batches ----------------------------------------------------------------------------

def bos_token_id(tokenizer: Any) -> int:
    """The id prepended to every window: bos, else pad, else eos (the first that is set and non-zero)."""
    for attr in ("bos_token_id", "pad_token_id", "eos_token_id"):
        value = getattr(tokenizer, attr, None)
        if value:
            return int(value)
    raise CorpusError("the tokenizer has no BOS, PAD or EOS token to prepend; pass bos=False")


def token_batches(texts: Iterable[str], tokenizer: Any, seq_len: int, batch_size: int, *, bos: bool = True,
                  drop_last: bool = True, shuffle_buffer: int = 0, seed: int = 0,
                  encode_batch: int = 64) -> Iterator[Any]:
    """LongTensor batches (batch_size, seq_len) of windows cut from single documents.

    With `bos`, each row is [BOS] + seq_len - 1 tokens; otherwise seq_len tokens. Windows of one
    document are consecutive and do not overlap. `shuffle_buffer` > 0 mixes rows across
    documents through a seeded buffer of that many rows.
    """
    import torch

    if batch_size < 1 or seq_len < (2 if bos else 1):
        raise CorpusError(f"need batch_size >= 1 and seq_len >= {2 if bos else 1}")
    rows = _shuffled(_windows(texts, tokenizer, seq_len, bos=bos, encode_batch=encode_batch),
                     shuffle_buffer, seed)
    batch: list[list[int]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == batch_size:
            yield torch.tensor(batch, dtype=torch.long)
            batch = []
    if batch and not drop_last:
        yield torch.tensor(batch, dtype=torch.long)


def _windows(texts: Iterable[str], tokenizer: Any, seq_len: int, *, bos: bool,
             encode_batch: int) -> Iterator[list[int]]:
    prefix = [bos_token_id(tokenizer)] if bos else []
    width = seq_len - len(prefix)
    chunk: list[str] = []
    for text in texts:
        chunk.append(text)
        if len(chunk) == encode_batch:
            yield from _cut(tokenizer(chunk, add_special_tokens=False)["input_ids"], prefix, width)
            chunk = []
    if chunk:
        yield from _cut(tokenizer(chunk, add_special_tokens=False)["input_ids"], prefix, width)


def _cut(encoded: list[list[int]], prefix: list[int], width: int) -> Iterator[list[int]]:
    for ids in encoded:
        for start in range(0, len(ids) - width + 1, width):
            yield prefix + list(ids[start: start + width])


def _shuffled(rows: Iterator[list[int]], size: int, seed: int) -> Iterator[list[int]]:
    if size <= 1:
        yield from rows
        return
    rng = random.Random(seed)
    buffer: list[list[int]] = []
    for row in rows:
        if len(buffer) < size:
            buffer.append(row)
            continue
        index = rng.randrange(size)
        yield buffer[index]
        buffer[index] = row
    rng.shuffle(buffer)
    yield from buffer

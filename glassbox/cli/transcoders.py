"""`glassbox transcoders ...` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="transcoders commands.", no_args_is_help=True)

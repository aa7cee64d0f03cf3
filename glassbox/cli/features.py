"""`glassbox features ...` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Feature dashboards: build, inspect, export.", no_args_is_help=True)

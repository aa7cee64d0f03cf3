"""The `glassbox` command. Each command group lives in its own module.

The engine's commands (trace, view, models, corpus, transcoders, features) are defined here. The
application's commands (serve, worker, setup) live with the layers they start and register
themselves in the `glassbox.commands` entry point group, so the engine never imports the app
and `glassbox` works, with the engine's commands only, where the app is not installed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

import typer

from glassbox.cli import corpus, features, models, trace, transcoders, view

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "glassbox.commands"

app = typer.Typer(
    name="glassbox",
    help="Glassbox: self-hosted circuit tracing for language models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("trace")(trace.trace_command)
app.command("view")(view.view_command)
app.add_typer(models.app, name="models")
app.add_typer(corpus.app, name="corpus")
app.add_typer(transcoders.app, name="transcoders")
app.add_typer(features.app, name="features")


def add_app_commands(target: typer.Typer) -> list[str]:
    """Register the commands installed packages offer; returns their names. A package that
    cannot be imported (its dependencies missing) is left out, with a debug log line."""
    added = []
    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            command: Callable[..., Any] = entry.load()
        except ImportError as exc:
            log.debug("command %r is not available: %s", entry.name, exc)
            continue
        target.command(entry.name)(command)
        added.append(entry.name)
    return added


def main() -> None:
    add_app_commands(app)
    app()

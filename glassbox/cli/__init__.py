"""The `glassbox` command. Each command group lives in its own module."""

from __future__ import annotations

import typer

from glassbox.cli import corpus, features, models, serve, trace, transcoders, worker
from glassbox.setup.cli import setup_command

app = typer.Typer(
    name="glassbox",
    help="Glassbox: self-hosted circuit tracing for language models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("trace")(trace.trace_command)
app.command("serve")(serve.serve_command)
app.command("worker")(worker.worker_command)
app.command("setup")(setup_command)
app.add_typer(models.app, name="models")
app.add_typer(corpus.app, name="corpus")
app.add_typer(transcoders.app, name="transcoders")
app.add_typer(features.app, name="features")


def main() -> None:
    app()

"""`python -m glassbox.setup`: the same as `glassbox setup`."""

from __future__ import annotations

import typer

from glassbox.setup.cli import setup_command

if __name__ == "__main__":
    typer.run(setup_command)

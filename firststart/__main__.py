"""`python -m firststart`: the same as `glassbox setup`."""

from __future__ import annotations

import typer

from firststart.cli import setup_command

if __name__ == "__main__":
    typer.run(setup_command)

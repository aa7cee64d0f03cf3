"""What every command shares: domain errors as one clear line, and progress bars."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import typer

from glassbox.errors import GlassboxError

F = TypeVar("F", bound=Callable[..., Any])


def fail_cleanly(fn: F) -> F:
    """Turn a GlassboxError (bad input, missing file, ...) into 'error: ...' and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except GlassboxError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(code=2) from None
        except KeyboardInterrupt:
            typer.secho("interrupted", err=True)
            raise typer.Exit(code=130) from None

    return wrapper  # type: ignore[return-value]


@contextmanager
def progress_bar(desc: str) -> Iterator[Callable[[str, float], None]]:
    """A tqdm bar driven by `progress(phase, fraction)` callbacks (on stderr)."""
    from tqdm import tqdm

    bar = tqdm(total=1000, desc=desc, file=sys.stderr,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")

    def report(phase: str, fraction: float) -> None:
        bar.set_description_str(f"{desc} ({phase})", refresh=False)
        bar.n = int(max(0.0, min(1.0, fraction)) * 1000)
        bar.refresh()

    try:
        yield report
    finally:
        bar.close()

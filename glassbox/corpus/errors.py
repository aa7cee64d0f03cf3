"""Corpus errors (GlassboxError subclasses, so the CLI and server show them as user errors)."""

from __future__ import annotations

from glassbox.errors import GlassboxError


class CorpusError(GlassboxError):
    """A corpus cannot be built or read (missing source, bad format, nothing left after cleaning)."""


class SourceUnavailableError(CorpusError):
    """One source could not be fetched or extracted; the build goes on without it."""

"""Domain errors. The engine raises these; the CLI and the server decide how to show them."""

from __future__ import annotations


class GlassboxError(ValueError):
    """Base class: a problem the user can fix (bad argument, missing file, wrong model)."""


class UnsupportedArchitectureError(GlassboxError):
    """The model's architecture has no adapter."""


class TranscoderError(GlassboxError):
    """A transcoder set is malformed or does not fit the model."""


class ModelNotAvailableError(GlassboxError):
    """A model cannot be found locally and cannot be fetched."""


class GraphFormatError(GlassboxError):
    """A graph file or graph JSON cannot be read."""


class GraphTooLargeError(GraphFormatError):
    """A graph JSON is over a size limit (bytes, nodes or links)."""

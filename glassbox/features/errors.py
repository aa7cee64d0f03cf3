"""Feature-dashboard errors (GlassboxError subclasses: the CLI and the server show them as user errors)."""

from __future__ import annotations

from glassbox.errors import GlassboxError


class FeatureBuildError(GlassboxError):
    """A build cannot start or continue with these inputs (bad option, other build in the folder)."""


class FeatureStoreError(GlassboxError):
    """A feature store is missing, incomplete, or has no such feature."""

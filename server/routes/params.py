"""Path and query parameter types shared by the routes (bounded and NUL-free, so a bad id is a
422 that says why, never a database error)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from server.schemas import MAX_INT, Text

JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="A job id (32 hex digits).")]
SlugPath = Annotated[Text, Path(min_length=1, max_length=100)]
NamePath = Annotated[Text, Path(min_length=1, max_length=100)]
IntId = Annotated[int, Path(ge=1, le=MAX_INT)]
Layer = Annotated[int, Path(ge=0, le=10_000)]
FeatureIndex = Annotated[int, Path(ge=0, le=MAX_INT)]
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size (capped by GLASSBOX_MAX_PAGE_SIZE).")]
Offset = Annotated[int, Query(ge=0, le=MAX_INT)]

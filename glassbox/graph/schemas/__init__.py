"""Neuronpedia's JSON Schemas for graph JSON and feature details, vendored unchanged.

Graph JSON that validates against `graph-schema.json` opens in Neuronpedia's graph viewer and
Anthropic's attribution-graph frontend; `feature-details-schema.json` describes the per-feature
payload those viewers fetch. Source, license and checksums: README.md and NOTICE beside this file.

    import jsonschema
    from glassbox.graph.schemas import load_schema
    jsonschema.Draft7Validator(load_schema("graph")).validate(data)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from glassbox.errors import GlassboxError

SCHEMA_DIR = Path(__file__).resolve().parent
SCHEMA_FILES = {"graph": "graph-schema.json", "feature-details": "feature-details-schema.json"}


def schema_path(name: str) -> Path:
    """The file of schema `name` ("graph" or "feature-details")."""
    if name not in SCHEMA_FILES:
        raise GlassboxError(f"unknown schema {name!r}; known: {', '.join(SCHEMA_FILES)}")
    return SCHEMA_DIR / SCHEMA_FILES[name]


def load_schema(name: str) -> dict[str, Any]:
    """Schema `name` as a fresh dict (callers may modify it without affecting others)."""
    return json.loads(schema_path(name).read_text(encoding="utf-8"))

"""Checks on the viewer's files that need no browser: fixtures follow the shared schemas, the
vendored D3 is the upstream build, and the source never builds HTML from strings, loads code
from a CDN or sets globals."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import jsonschema
import pytest
from viewer_harness import REPO_ROOT, SCHEMAS

FIXTURES = Path(__file__).parent / "fixtures"
STATIC = REPO_ROOT / "frontend" / "static"
# The viewer, the helpers it shares with the pages (lib/: the DOM builder and HTTP client), the dev page.
VIEWER_MODULES = sorted((STATIC / "viewer").glob("*.js")) + sorted((STATIC / "lib").glob("*.js"))
VIEWER_SOURCES = VIEWER_MODULES + sorted((REPO_ROOT / "frontend" / "dev").glob("*.js"))
D3_FILE = STATIC / "vendor" / "d3-7.9.2.esm.min.js"
D3_UPSTREAM_SHA256 = "912111098ea99503a6f4967361d2bbdc9dbf58cf9c678c8e27e5b02d1a07f0c1"


def _schema(name: str) -> dict:
    return json.loads((SCHEMAS / name).read_text())


def test_small_graph_fixture_follows_the_graph_schema() -> None:
    graph = json.loads((FIXTURES / "small_graph.json").read_text())
    jsonschema.validate(graph, _schema("graph-schema.json"))
    ids = {node["node_id"] for node in graph["nodes"]}
    assert all(link["source"] in ids and link["target"] in ids for link in graph["links"])


def test_feature_fixture_follows_the_feature_details_schema() -> None:
    features = json.loads((FIXTURES / "small_features.json").read_text())
    schema = _schema("feature-details-schema.json")
    for details in features.values():
        jsonschema.validate(details, schema)


def test_vendored_d3_is_the_unmodified_upstream_build() -> None:
    lines = D3_FILE.read_bytes().split(b"\n")
    assert lines[-1] == b"" and lines[-2] == b"export default module.exports;"
    upstream = b"\n".join(lines[4:-2]) + b"\n"
    assert hashlib.sha256(upstream).hexdigest() == D3_UPSTREAM_SHA256
    assert (
        (STATIC / "vendor" / "d3-7.9.2.LICENSE.txt")
        .read_text()
        .startswith("Copyright 2010-2026 Mike Bostock")
    )


@pytest.mark.parametrize("path", VIEWER_SOURCES, ids=lambda p: p.name)
def test_source_never_parses_html_from_strings(path: Path) -> None:
    source = path.read_text()
    for pattern in (
        r"\binnerHTML\b",
        r"\bouterHTML\b",
        r"insertAdjacentHTML",
        r"document\.write",
        r"\beval\(",
        r"new Function",
        r"createContextualFragment",
        r"DOMParser",
    ):
        assert not re.search(pattern, source), f"{path.name} uses {pattern}"


@pytest.mark.parametrize("path", VIEWER_MODULES, ids=lambda p: p.name)
def test_viewer_modules_set_no_globals_and_load_nothing_remote(path: Path) -> None:
    source = path.read_text()
    assert not re.search(r"\bwindow\.\w+\s*=", source), "viewer modules must not set window globals"
    assert not re.search(r"\bglobalThis\.\w+\s*=", source)
    assert not re.search(r"^\s*import[^;]*[\"']https?:", source, re.M), "no remote imports"
    assert "cdn" not in source.lower()


def test_no_page_or_module_loads_from_a_cdn() -> None:
    for path in list((REPO_ROOT / "frontend").rglob("*.html")) + list((REPO_ROOT / "frontend").rglob("*.js")):
        if path.parent.name == "vendor":
            continue
        text = path.read_text()
        assert not re.search(r"<script[^>]+src=[\"']https?:", text), path
        assert not re.search(r"<link[^>]+href=[\"']https?:", text), path

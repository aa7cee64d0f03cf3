"""Checks on the pages' files that need no browser: templates run no inline script and never
mark text safe; page modules build no HTML from strings, set no globals and load nothing remote."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
TEMPLATES = sorted((FRONTEND / "templates").rglob("*.html"))
MODULES = sorted((FRONTEND / "static" / "pages").glob("*.js"))


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.relative_to(FRONTEND / "templates").as_posix())
def test_templates_run_no_inline_script_and_escape_everything(path: Path) -> None:
    text = path.read_text()
    for tag in re.findall(r"<script\b[^>]*>", text):
        assert "src=" in tag or 'type="application/json"' in tag, f"inline script: {tag}"
    assert not re.search(r"\|\s*safe\b", text), "|safe would let user text become markup"
    assert not re.search(r"autoescape\s+false", text)
    assert not re.search(r"<[a-z][^>]*\son[a-z]+\s*=", text), "inline event handlers break the CSP"


def test_every_page_module_a_template_loads_exists() -> None:
    names = set()
    for path in TEMPLATES:
        names |= set(re.findall(r"\{% block module %\}([\w-]+)\{% endblock %\}", path.read_text()))
    assert names and all((FRONTEND / "static" / "pages" / f"{name}.js").is_file() for name in names)


def test_every_script_and_stylesheet_a_template_links_is_a_static_file() -> None:
    links = set()
    for path in TEMPLATES:
        links |= set(re.findall(r'(?:src|href)="/static/([^"{}]+)"', path.read_text()))
    assert "pages/admin-jobs.js" in links and "viewer/boot.js" in links
    missing = sorted(link for link in links if not (FRONTEND / "static" / link).is_file())
    assert missing == []


def test_all_javascript_lives_under_static() -> None:
    """Scripts are plain files served from /static, never rendered through Jinja."""
    assert sorted((FRONTEND / "templates").rglob("*.js")) == []


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_page_modules_build_no_html_from_strings(path: Path) -> None:
    source = path.read_text()
    for pattern in (
        r"\binnerHTML\b",
        r"\bouterHTML\b",
        r"insertAdjacentHTML",
        r"document\.write",
        r"\beval\(",
        r"new Function",
        r"createContextualFragment",
    ):
        assert not re.search(pattern, source), f"{path.name} uses {pattern}"
    if path.name != "common.js":  # refreshSections: the server's own escaped page, in one place
        assert "DOMParser" not in source


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_page_modules_set_no_globals_and_load_nothing_remote(path: Path) -> None:
    source = path.read_text()
    assert not re.search(r"\b(window|globalThis)\.\w+\s*=", source), "no globals"
    assert not re.search(r"^\s*import[^;]*[\"']https?:", source, re.M), "no remote imports"
    assert not re.search(r"fetch\([\"'`]https?:", source), "only this site is called"

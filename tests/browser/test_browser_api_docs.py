"""The interactive API docs render offline: Swagger UI comes from the vendored copy,
nothing is loaded from another origin, and the page's CSP lets them run (open_page fails on
CSP errors and page errors)."""

from __future__ import annotations

from gbx_browser_pages import screenshot
from playwright.sync_api import expect

RESOURCES_JS = "performance.getEntriesByType('resource').map((e) => e.name)"


def _only_local(page, base: str) -> None:
    loaded = page.evaluate(RESOURCES_JS)
    assert loaded and all(url.startswith(base) or url.startswith("data:") for url in loaded), loaded


def test_swagger_ui_renders_offline(app, open_page):
    docs = open_page("/docs")
    expect(docs.locator(".swagger-ui .info .title")).to_contain_text("Glassbox")
    expect(docs.locator(".opblock-summary-path").first).to_be_visible()
    assert docs.locator(".opblock").count() > 20  # every endpoint of the schema is listed
    _only_local(docs, app.base)
    screenshot(docs, "api-docs-swagger")


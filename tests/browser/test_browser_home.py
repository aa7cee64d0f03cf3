"""Home page: featured and recent graphs, search by prompt and by feature label, its JSON twin;
keyboard use, phone width, and the light and dark themes shared with the graph viewer."""

from __future__ import annotations

import json

import pytest
from gbx_browser_app import TEXAS
from gbx_browser_pages import PHONE, screenshot, wait_for_viewer
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

DARK_BG = "rgb(15, 20, 25)"  # --gb-bg and --gbv-bg of the dark theme
LIGHT_BG = "rgb(255, 255, 255)"


def _background(page, selector: str) -> str:
    return page.locator(selector).first.evaluate("el => getComputedStyle(el).backgroundColor")


def test_featured_recent_and_searches(app, users, texas_graph, open_page):
    from firststart.featured import FEATURED

    example = next(item for item in FEATURED if item.key == "jordan")
    body = {"model": "tiny", "prompt": "Michael Jordan plays the sport of"}
    job = users["ada"].post("/api/traces", json=body).json()
    slug = texas_graph["slug"]
    r = users["grace"].post(f"/api/graphs/{slug}/comments", json={"text": "a clean circuit"})
    assert r.status_code == 201, r.text
    r = users["grace"].put(
        "/api/features/tiny/tc/1/2/label", json={"text": "Lone Star feature", "base_version": 0}
    )
    assert r.status_code == 200, r.text

    done = app.wait_for_job(users["ada"], job["id"], "done")
    _as_the_setup_stores_it(app, done["graph_slug"], example.slug)
    page = open_page("/")
    cards = page.locator("#featured li a")
    expect(cards).to_have_text([example.title, TEXAS])  # the setup's examples first, by title
    expect(cards.nth(1)).to_have_attribute("href", f"/graph/{slug}")
    expect(page.locator("#recent a", has_text=TEXAS).first).to_be_visible()

    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#main")).to_be_focused()
    page.get_by_label("Prompts containing").fill("capital of TEXAS")
    page.get_by_label("Prompts containing").press("Enter")
    expect(page.locator("#results-title")).to_have_text("Graphs whose prompt contains “capital of TEXAS”")
    expect(page.locator("#prompt-results a", has_text=TEXAS).first).to_have_attribute(
        "href", f"/graph/{slug}"
    )

    page.get_by_label("Feature labels containing").fill("lone star")
    page.get_by_label("Feature labels containing").press("Enter")
    link = page.locator("#label-results a", has_text="Lone Star feature")
    expect(link).to_have_attribute("href", "/features/tiny/tc/1/2")
    link.click()
    expect(page.locator("#feature-title")).to_have_text("Lone Star feature")

    twin = json.loads(open_page("/?label=lone+star&format=json").locator("body").inner_text())
    assert [(f["layer"], f["index"], f["label"]) for f in twin["label_results"]] == [
        (1, 2, "Lone Star feature")
    ]
    assert slug in [g["slug"] for g in twin["featured"]]

    nothing = open_page("/?q=no+such+prompt+anywhere", viewport=PHONE)
    expect(nothing.locator("#prompt-results")).to_contain_text("No graph found.")
    width = nothing.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways ({width} px)"
    screenshot(nothing, "home-phone")


def test_theme_button_and_system_dark_theme_match_the_viewer(texas_graph, open_page):
    page = open_page("/")
    assert _background(page, "body") == LIGHT_BG
    page.get_by_role("button", name="Switch to the dark theme").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert _background(page, "body") == DARK_BG
    page.reload()  # the choice is remembered
    expect(page.get_by_role("button", name="Switch to the light theme")).to_be_visible()
    assert _background(page, "body") == DARK_BG
    screenshot(page, "home-dark")

    graph = open_page(f"/graph/{texas_graph['slug']}", color_scheme="dark")
    wait_for_viewer(graph)
    expect(graph.locator(".gbv")).to_have_attribute("data-theme", "dark")
    assert _background(graph, ".gbv") == DARK_BG and _background(graph, "body") == DARK_BG
    screenshot(graph, "graph-page-dark")


def _as_the_setup_stores_it(app, slug, featured_slug):
    """The graph under its featured slug, owned by nobody (only the setup writes featured-*)."""
    from sqlalchemy import select

    from persistence.db import make_engine, make_sessionmaker
    from persistence.graphs import rename_graph
    from persistence.tables import GraphRecord

    engine = make_engine(app.settings.resolved_database_url())
    with make_sessionmaker(engine)() as session:
        record = session.scalar(select(GraphRecord).where(GraphRecord.slug == slug))
        rename_graph(session, record, featured_slug)
        record.owner_id = None
        session.commit()
    engine.dispose()

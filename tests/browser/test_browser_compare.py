"""The compare page in Chromium: switch between the side-by-side and the difference view
(the URL carries the view, so the link is shareable), and one prompt traced on two tiny models
with different tokenizers, its token positions aligned. The worker process traces every graph."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _tiny_models import make_chunked_model_dir
from gbx_browser_app import TEXAS, RunningApp, disable_models, register_model
from gbx_browser_pages import PHONE, screenshot
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

FRANCE = "The capital of France is"


def _trace(app: RunningApp, client: httpx.Client, model: str, prompt: str) -> str:
    """An unlisted graph: other modules' searches and lists of the shared app do not see it."""
    body = {"model": model, "prompt": prompt, "params": {"max_n_logits": 3}, "visibility": "unlisted"}
    r = client.post("/api/traces", json=body)
    assert r.status_code == 202, r.text
    return app.wait_for_job(client, r.json()["id"], "done")["graph_slug"]


@pytest.fixture(scope="module")
def chunky(app: RunningApp, admin: httpx.Client, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second tiny model (gemma3, a tokenizer that cuts words into 3-character pieces) and its
    random transcoders, registered as `chunky` for this module."""
    from glassbox.testing import make_random_transcoders_dir

    root: Path = tmp_path_factory.mktemp("chunky")
    model_dir = make_chunked_model_dir(root / "model", "gemma3")
    tc_dir = make_random_transcoders_dir(root / "tc", model_dir, seed=3)
    register_model(admin, "chunky", model_dir, tc_dir, n_layers=2)
    yield "chunky"
    disable_models(app, ["chunky"])


def _twin(page: Any, url: str) -> dict[str, Any]:
    return page.evaluate("async (u) => (await (await fetch(u)).json())", url)


def _no_sideways_scroll(page: Any) -> None:
    scroll, client = page.evaluate("() => [document.documentElement.scrollWidth, innerWidth]")
    assert scroll <= client, f"the page scrolls sideways: {scroll} > {client} px"


def test_switch_between_side_by_side_and_difference(app, admin, texas_graph, open_page):
    a, b = texas_graph["slug"], _trace(app, admin, "tiny", FRANCE)
    page = open_page(f"/compare?a={a}&b={b}")
    twin = _twin(page, f"/compare?a={a}&b={b}&format=json")
    c = twin["comparison"]
    assert twin["view"] == "side" and c["comparable"] and c["n_shared"] > 0
    expect(page.get_by_role("link", name="Side by side")).to_have_attribute("aria-current", "page")
    expect(page.locator("#graph-a tbody tr.gb-shared")).to_have_count(min(c["n_shared"], 200))
    expect(page.locator("#difference")).to_have_count(0)

    page.get_by_role("link", name="Difference").click()
    expect(page).to_have_url(re.compile(r"[?&]view=diff(&|$)"))
    expect(page.get_by_role("link", name="Difference")).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("heading", name="What differs")).to_be_visible()
    diff = _twin(page, f"/compare?a={a}&b={b}&view=diff&format=json")
    d = diff["difference"]
    assert diff["view"] == "diff" and diff["comparison"] == c  # the same data behind both views
    expect(page.locator("#changed tbody tr")).to_have_count(len(d["changed"]))
    expect(page.locator("#only-a tbody tr[data-feature]")).to_have_count(len(d["only_a"]))
    expect(page.locator("#only-b tbody tr[data-feature]")).to_have_count(len(d["only_b"]))
    expect(page.locator("tr.gb-shared")).to_have_count(0)
    top = d["changed"][0]  # the largest change first, its sign shown and coloured
    row = page.locator("#changed tbody tr").first
    expect(row).to_have_attribute("data-feature", f"{top['layer']}/{top['feature']}")
    expect(row.locator("td.gb-change")).to_have_text(f"{top['change'] * 100:+.1f} pp")
    expect(row.locator("td.gb-change")).to_have_class(re.compile("gb-up" if top["change"] > 0 else "gb-down"))
    expect(page.locator("#outputs tbody tr")).to_have_count(len(c["outputs"]))
    screenshot(page, "compare-difference")

    shared = open_page(page.url)  # the link reopens the difference view for someone else
    expect(shared.get_by_role("heading", name="What differs")).to_be_visible()
    page.get_by_role("link", name="JSON").click()
    assert json.loads(page.locator("body").inner_text()) == diff


def test_one_prompt_on_two_models_shows_the_tokens_aligned(app, admin, texas_graph, chunky, open_page):
    a, b = texas_graph["slug"], _trace(app, admin, chunky, TEXAS)
    page = open_page(f"/compare?a={a}&b={b}")
    al = _twin(page, f"/compare?a={a}&b={b}&format=json")["comparison"]["alignment"]
    assert al["tokens_b"] == ["<bos>", "The", "cap", "ita", "l", "of", "Tex", "as", "is"]
    expect(page.locator("#compare-summary")).to_contain_text("feature indices do not correspond")
    rows = page.locator("#alignment tbody tr")
    expect(rows).to_have_count(len(al["groups"]))
    texas = page.locator('#alignment tr[data-pos-a="4"]')
    expect(texas).to_have_attribute("data-pos-b", "6,7")
    expect(texas.locator(".gb-align-a .gb-tok-chip")).to_have_text(["4Texas"])
    expect(texas.locator(".gb-align-b .gb-tok-chip")).to_have_text(["6Tex", "7as"])
    expect(page.locator("#alignment tr.gb-align-split")).to_have_count(2)  # capital and Texas
    expect(page.locator("#graph-b thead")).not_to_contain_text("In both")
    screenshot(page, "compare-two-models")

    phone = open_page(f"/compare?a={a}&b={b}&view=diff", viewport=PHONE)
    expect(phone.locator("#alignment")).to_be_visible()
    _no_sideways_scroll(phone)
    screenshot(phone, "compare-two-models-diff-phone")

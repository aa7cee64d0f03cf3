"""Adding a model from the jobs admin page: the form refuses a misspelt reference with the
server's sentence, queues a model-add job that the worker process runs while the page follows
its progress, and the new-graph form offers the model once the job is done, not before."""

from __future__ import annotations

import re

import pytest
from gbx_browser_app import disable_models
from gbx_browser_pages import screenshot
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

NAME = "tiny-added"


def test_admin_adds_a_model_and_the_new_graph_form_offers_it(app, tiny_dirs, open_page):
    model_dir, tc_dir = tiny_dirs
    page = open_page("/admin/jobs", user="admin")
    model = page.get_by_role("textbox", name=re.compile("^Model hub id"))
    transcoders = page.get_by_role("textbox", name=re.compile("^Transcoders"))
    model.fill(str(model_dir))
    transcoders.fill("not a reference")
    page.get_by_role("button", name="Add model").click()
    expect(page.locator("#add-model-status")).to_contain_text("neither a folder nor a hub repo id")

    try:
        with app.worker_paused():  # the job waits in the queue while the pages show it
            transcoders.fill(str(tc_dir))
            page.get_by_text("Names").click()
            page.get_by_label("Model name").fill(NAME)
            page.get_by_label("Display name").fill("Tiny, added from the page")
            with page.expect_navigation():
                page.get_by_role("button", name="Add model").click()
            row = page.locator("tr[data-kind='model-add']")
            expect(row).to_have_count(1)
            expect(row).to_have_attribute("data-status", "queued")
            expect(row).to_contain_text(f"Add model {NAME}")
            assert row.locator("progress").evaluate("el => el.value") == 0
            early = open_page("/new", user="admin")
            expect(early.locator("#model option")).to_have_count(1)  # the session's model only

        expect(row).to_have_attribute("data-status", "done", timeout=90_000)  # polled, then reloaded
        expect(row.locator("[data-cell=phase]")).to_have_text("done")
        assert row.locator("progress").evaluate("el => el.value") == 1
        screenshot(page, "admin-add-model")

        form = open_page("/new", user="admin")
        expect(form.locator(f"#model option[value='{NAME}']")).to_have_text("Tiny, added from the page")
        form.get_by_label("Model").select_option(NAME)
        expect(form.get_by_label("Transcoder set")).to_have_value(tc_dir.name)
    finally:
        disable_models(app, [NAME])  # later modules see the session's one model

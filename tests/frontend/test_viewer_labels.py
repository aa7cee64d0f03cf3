"""Label editing goes through the api adapter; labels other people saved (fetchLabels) show up;
a failed save says so."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from viewer_harness import ViewerPage

pytestmark = pytest.mark.browser


def test_saving_a_label_calls_the_api_and_updates_every_view(viewer: ViewerPage) -> None:
    viewer.open()
    viewer.click("2_301_5")
    page = viewer.page
    label = page.get_by_label("Label for this feature")
    expect(label).to_have_value("say a capital")
    label.fill("capital city")
    label.press("Enter")
    expect(page.locator(".gbv-label-status")).to_have_text("Saved")
    (saved,) = viewer.api_calls("saveLabel")
    assert saved == {
        "nodeId": "2_301_5",
        "featureKey": "2_46357_5",
        "layer": 2,
        "featureIndex": 301,
        "label": "capital city",
        "scan": "test-model",
        "slug": "texas-capital-small",
    }
    expect(page.locator(".gbv-details-label")).to_have_text("capital city")
    viewer.hover("2_301_5")
    expect(page.locator(".gbv-tooltip-label")).to_have_text("capital city")


def test_a_failed_save_is_reported(viewer: ViewerPage) -> None:
    viewer.open(failSave="1")
    viewer.click("2_301_5")
    viewer.page.get_by_label("Label for this feature").fill("nope")
    viewer.page.get_by_role("button", name="Save label").click()
    expect(viewer.page.locator(".gbv-label-status")).to_have_text("Not saved: the fake server refused")


def test_labels_saved_by_someone_else_are_shown(viewer: ViewerPage) -> None:
    viewer.open(labels="/tests/frontend/fixtures/shared_labels.json")
    viewer.wait_state("s => s.serverLabels.get('2_301_5') === 'label saved by another user'")
    viewer.hover("2_301_5")
    expect(viewer.page.locator(".gbv-tooltip-label")).to_have_text("label saved by another user")
    assert viewer.api_calls("fetchLabels") == [9]  # one call for every feature node


def test_an_empty_label_drops_the_override_without_calling_the_server(viewer: ViewerPage) -> None:
    viewer.open()
    viewer.click("2_301_5")
    label = viewer.page.get_by_label("Label for this feature")
    label.fill("temporary")
    label.press("Enter")
    expect(viewer.page.locator(".gbv-label-status")).to_have_text("Saved")
    viewer.page.get_by_label("Label for this feature").fill("")
    viewer.page.get_by_label("Label for this feature").press("Enter")
    expect(viewer.page.locator(".gbv-label-status")).to_have_text("Label override removed")
    expect(viewer.page.locator(".gbv-details-label")).to_have_text("say a capital")
    assert len(viewer.api_calls("saveLabel")) == 1

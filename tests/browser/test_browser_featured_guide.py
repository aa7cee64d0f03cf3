"""Featured graphs of the real demo model open guided: the suggested subgraph pinned, its note
shown, the model's top next tokens in the header and on the home page; "Clear" drops the note and
"Suggest subgraph" brings the server's suggestion back.

The graphs are made the way the setup's featured step makes them (firststart.featured
`featured_doc`, firststart.store `store_featured_graph`): Gemma 3 270M and the demo transcoders
traced in this process, stored in the app's database under `featured-<key>`, owned by nobody.
Their features carry no labels (the dashboards step labels them later), which is how a
newcomer sees them while the setup is still building dashboards. The default view of each is
saved under test-artifacts/browser/featured-guide-<key>.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gbx_browser_app import RunningApp, disable_models
from gbx_browser_pages import screenshot, wait_for_viewer
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOWN = ("jordan", "tokyo", "batkin", "addition", "opposite-en")
MODEL = "gemma-3-270m"
MAX_FEATURE_NODES = 1000  # the setup's default (firststart.plan)


def _sessions(app: RunningApp) -> Any:
    from persistence.db import make_engine, make_sessionmaker

    engine = make_engine(app.settings.resolved_database_url())
    return engine, make_sessionmaker(engine)


@pytest.fixture(scope="module")
def featured(app: RunningApp, demo_model_dir: Path, demo_transcoders_dir: Path) -> Iterator[dict[str, Any]]:
    """key -> the stored graph JSON of the featured examples in SHOWN, stored as the setup stores
    them; removed again afterwards (other modules expect no featured graphs of their own)."""
    from sqlalchemy import delete, update

    import glassbox
    from firststart import store
    from firststart.featured import featured_doc, get_featured, top_predictions
    from persistence.tables import GraphRecord, ModelEntry

    model = glassbox.load_model(str(demo_model_dir), device="cpu")
    tcs = glassbox.load_transcoders(demo_transcoders_dir)
    engine, sessions = _sessions(app)
    docs = {}
    try:
        with sessions() as session:
            entry = store.ensure_model(session, name=MODEL, source=str(demo_model_dir), display_name=MODEL)
            tset = store.ensure_transcoder_set(
                session, entry, name=tcs.name, source=str(demo_transcoders_dir), n_layers=model.n_layers,
                description="demo transcoders",
            )
            session.execute(update(ModelEntry).where(ModelEntry.id == entry.id).values(enabled=True))
            session.commit()
            for key in SHOWN:
                item = get_featured(key)
                result = glassbox.trace(item.prompt, model=model, transcoders=tcs,
                                        max_feature_nodes=MAX_FEATURE_NODES)
                docs[key] = featured_doc(result, item, scan=MODEL, top=top_predictions(model, item))
                scores = (result.replacement_score, result.completeness_score)
                store.store_featured_graph(session, item, docs[key], model=entry, tset=tset, scores=scores,
                                           max_feature_nodes=MAX_FEATURE_NODES)
        yield docs
    finally:
        with sessions() as session:
            slugs = [get_featured(key).slug for key in SHOWN]
            session.execute(delete(GraphRecord).where(GraphRecord.slug.in_(slugs)))
            session.commit()
        engine.dispose()
        disable_models(app, [MODEL])


def _percent(prob: float) -> str:
    return f"{round(prob * 100)}%" if prob >= 0.01 else "<1%"


def _quoted(token: str) -> str:
    import json

    return json.dumps(token, ensure_ascii=False)  # the viewer's quoteToken


def test_featured_graphs_open_with_the_suggested_subgraph_its_note_and_the_top_predictions(
    app, featured, open_page
):
    for key in SHOWN:
        doc = featured[key]
        guide = doc["metadata"]["glassbox"]["guide"]
        top = doc["metadata"]["glassbox"]["top_predictions"]
        item_expected = doc["metadata"]["glassbox"]["featured"]["expected"]
        assert top[0]["token"] == item_expected, (key, top)  # the model gets it right
        assert guide["token"] == item_expected and guide["pinned_ids"][-1] == guide["target"]
        assert 8 <= len(guide["pinned_ids"]) <= 20, (key, guide["pinned_ids"])

        page = open_page(f"/graph/featured-{key}")
        wait_for_viewer(page)
        expect(page.locator(".gbv-sg-count")).to_have_text(f" ({len(guide['pinned_ids'])} pinned)")
        grouped = {node for group in guide["supernodes"] for node in group[1:]}
        expect(page.locator(".gbv-sg-node")).to_have_count(
            len(guide["supernodes"]) + len(set(guide["pinned_ids"]) - grouped))
        expect(page.locator(".gbv-supernode-name")).to_have_text([group[0] for group in guide["supernodes"]])
        note = page.get_by_role("note", name="About the suggested subgraph")
        expect(note).to_be_visible()
        expect(note.locator("p")).to_have_text(guide["note"])
        predictions = page.locator(".gbv-predictions .gbv-prediction")
        expect(predictions).to_have_text([f"{_quoted(t['token'])} {_percent(t['prob'])}" for t in top])
        screenshot(page, f"featured-guide-{key}")

    jordan = featured["jordan"]["metadata"]["glassbox"]["guide"]
    errors = f"{round(jordan['shares']['errors'] * 100)}% of its influence traces back to error nodes"
    assert errors in " ".join(jordan["note"]) and "Pushing it down: " in " ".join(jordan["note"])

    page = open_page("/graph/featured-jordan")
    wait_for_viewer(page)
    page.locator(".gbv-subgraph").get_by_role("button", name="Clear").click()
    expect(page.locator(".gbv-sg-count")).to_have_text(" (0 pinned)")
    expect(page.locator(".gbv-suggestion")).to_have_count(0)
    page.get_by_role("button", name="Suggest subgraph").click()  # the server's suggestion
    expect(page.locator(".gbv-sg-count")).to_have_text(f" ({len(jordan['pinned_ids'])} pinned)")
    note = page.get_by_role("note", name="About the suggested subgraph")
    expect(note.locator("p")).to_have_text(jordan["note"])
    expect(page).to_have_url(re.compile(r"pinnedIds="))
    page.get_by_role("button", name="Hide note").click()
    expect(page.locator(".gbv-suggestion")).to_have_count(0)
    expect(page.locator(".gbv-sg-count")).to_have_text(f" ({len(jordan['pinned_ids'])} pinned)")

    home = open_page("/")
    for key in SHOWN:
        first = featured[key]["metadata"]["glassbox"]["top_predictions"][0]
        card = home.locator("#featured li", has=home.locator(f'a[href="/graph/featured-{key}"]'))
        shown = f"“{first['token']}” {_percent(first['prob'])}"
        expect(card.locator(".gb-top-next li").first).to_have_text(shown)
    screenshot(home, "featured-guide-home")


def test_the_suggestion_api_answers_the_stored_guide(app, featured, users):
    r = users["ada"].get("/api/graphs/featured-tokyo/suggested-subgraph")
    assert r.status_code == 200, r.text
    stored = featured["tokyo"]["metadata"]["glassbox"]["guide"]
    assert r.json() == stored  # no labels in the database: the same numbers and words
    assert users["ada"].get("/api/graphs/no-such-graph/suggested-subgraph").status_code == 404

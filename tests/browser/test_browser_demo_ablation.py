"""Interventions on the real demo model, through the whole app: an ablation chosen from a
Gemma 3 270M graph moves the top logit the way the graph says, and the graph page's before/after
table shows it.

The worker process traces "Fact: Michael Jordan plays the sport of" with the reference
transcoders (as tests/test_interventions.py does in-process), the test picks the feature node
with the largest direct edge into the top logit from the graph JSON the page shows, selects it
in the viewer, ablates it from the interventions panel and reads the table. The graph predicts
the change: ablating a feature removes its direct contribution, -edge, from the logit. That is
exact in the constrained replacement model (frozen attention, norms and MLP paths: the graph's
own linear world) and what the page's default (free) run is expected to follow.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gbx_browser_app import ARTIFACTS, RunningApp, disable_models, register_model
from gbx_browser_pages import screenshot, wait_for_viewer
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

JORDAN = "Fact: Michael Jordan plays the sport of"
TRACE_PARAMS = {"max_feature_nodes": 300}  # as the engine's acceptance test traces it
MINUS = "\u2212"  # the interventions panel writes a decrease with the minus sign


@pytest.fixture(scope="module")
def jordan_graph(
    app: RunningApp, admin: httpx.Client, demo_model_dir: Path, demo_transcoders_dir: Path
) -> Iterator[dict[str, Any]]:
    """The demo model and the reference transcoders registered (for this module), the prompt
    traced by the worker as an unlisted graph (other modules' lists do not see it); returns the
    graph's JSON (what the page's viewer draws) with its slug."""
    tcs = demo_transcoders_dir
    register_model(admin, "gemma-3-270m", demo_model_dir, tcs, n_layers=18, tc_name=tcs.name)
    body = {"model": "gemma-3-270m", "prompt": JORDAN, "params": TRACE_PARAMS, "visibility": "unlisted"}
    r = admin.post("/api/traces", json=body)
    assert r.status_code == 202, r.text
    slug = app.wait_for_job(admin, r.json()["id"], "done", timeout_s=900)["graph_slug"]
    yield {"slug": slug, **admin.get(f"/api/graphs/{slug}/data").json()}
    disable_models(app, ["gemma-3-270m"])


def _strongest_into_top_logit(doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], float]:
    """(top logit node, feature node with the largest direct edge into it, that edge's weight)."""
    nodes = {n["node_id"]: n for n in doc["nodes"]}
    top = max((n for n in doc["nodes"] if n["feature_type"] == "logit"), key=lambda n: n["token_prob"])
    into_top = [link for link in doc["links"] if link["target"] == top["node_id"]]
    edges = [
        (link["weight"], nodes[link["source"]])
        for link in into_top
        if nodes[link["source"]]["feature_type"] == "cross layer transcoder"
    ]
    assert edges, "no feature has a direct edge into the top logit"
    weight, feature = max(edges, key=lambda e: e[0])
    return top, feature, weight


def _ablate_from_the_page(open_page: Any, slug: str, feature: dict[str, Any], *, constrained: bool) -> Any:
    """Open the graph page with the feature selected (clickedId: the viewer's shareable state),
    add it to the interventions panel, ablate it and wait for the before/after table."""
    layer, index, pos = (int(x) for x in feature["node_id"].split("_"))
    page = open_page(f"/graph/{slug}?clickedId={feature['node_id']}", user="ada")
    wait_for_viewer(page)
    expect(page.locator(".gbv-node-id")).to_have_text(feature["node_id"])
    page.locator(".gbv-interventions > summary").click()
    page.get_by_role("button", name="Add selected features").click()
    row = page.locator(".gbv-iv-items tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(f"L{layer} #{index}")
    expect(row.locator(".gbv-iv-pos")).to_have_value(str(pos))
    expect(row.locator(".gbv-iv-mode")).to_have_value("ablate")
    page.get_by_label("New tokens").fill("3")
    if constrained:
        page.get_by_label("Constrained (linear paths only)").check()
    page.get_by_role("button", name="Run intervention").click()
    expect(page.locator(".gbv-iv-status")).to_have_text("Done.", timeout=300_000)
    return page


def _job_result(page: Any, slug: str, *, constrained: bool) -> dict[str, Any]:
    jobs = page.evaluate("async () => (await (await fetch('/api/jobs?limit=20')).json())")
    mine = [j for j in jobs if j["kind"] == "intervention" and j["graph_slug"] == slug]
    job = next(j for j in mine if (j["result"] or {}).get("constrained") is constrained)
    return job["result"]


@pytest.mark.parametrize("constrained", [True, False], ids=["constrained", "free"])
def test_ablating_the_top_logits_strongest_feature_moves_it_as_the_graph_says(
    app, users, jordan_graph, open_page, constrained
):
    slug = jordan_graph["slug"]
    top, feature, edge = _strongest_into_top_logit(jordan_graph)
    assert "basketball" in top["clerp"], top  # the demo model knows its sports
    assert edge > 0, "the strongest direct edge into the top logit supports it"
    predicted = -1  # ablation removes the feature's +edge: the top logit goes down
    vocab_id = int(top["node_id"].split("_")[1])

    page = _ablate_from_the_page(open_page, slug, feature, constrained=constrained)
    result = _job_result(page, slug, constrained=constrained)
    layer, index, pos = (int(x) for x in feature["node_id"].split("_"))
    ablation = {"layer": layer, "pos": pos, "feature": index, "mode": "ablate", "value": 0.0}
    assert result["interventions"] == [ablation]
    rows = result["rows"]
    k = next(i for i, r in enumerate(rows) if r["token_id"] == vocab_id)
    assert k == 0, "the graph's top logit is the clean model's most likely next token"
    delta = rows[k]["delta"]

    table = page.locator(".gbv-iv-table tbody tr")
    expect(table).to_have_count(len(rows))
    cells = table.nth(k).locator("td")
    expect(cells.nth(0)).to_have_text('" basketball"')
    expect(cells.nth(1)).to_have_text(f"{rows[k]['prob_before'] * 100:.2f}%")
    expect(cells.nth(2)).to_have_text(f"{rows[k]['prob_after'] * 100:.2f}%")
    shown = cells.nth(3).inner_text()
    sign = -1 if shown.startswith(MINUS) else 1 if shown.startswith("+") else 0
    assert sign == predicted, (
        f"the table shows {shown!r} for the top logit; the graph's edge {edge:+.4f} from "
        f"{feature['node_id']} predicts a {'fall' if predicted < 0 else 'rise'} (job delta {delta:+.6f})"
    )
    assert (delta > 0) - (delta < 0) == predicted
    if abs(delta) >= 0.001:  # the panel highlights changes of at least 0.1 percentage points
        expect(table.nth(k)).to_have_class(re.compile("gbv-iv-down" if predicted < 0 else "gbv-iv-up"))
    mode = "constrained" if constrained else "free"
    screenshot(page, f"demo-ablation-{mode}")
    report = {"prompt": JORDAN, "graph": slug, "feature": feature["node_id"], "edge_to_top_logit": edge,
              "top_logit": top["clerp"], "table_change": shown, **{key: rows[k][key] for key in
              ("token", "prob_before", "prob_after", "delta")}}
    (ARTIFACTS / f"demo-ablation-{mode}.json").write_text(json.dumps(report, indent=1))

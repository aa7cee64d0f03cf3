"""circuit-tracer's `create_graph_files` output, uploaded to the server's graph import, keeps its
labels: every node's `clerp`, and the view saved in qParams (including circuit-tracer's saved
`clerps`), come back unchanged from /api/graphs/{slug}/data. Embedded stack (SQLite), no Redis.

The graph is tests/frontend/fixtures/circuit-tracer-files/dallas-tiny.json (circuit-tracer
0.5.0's own output, see tests/frontend/test_view_command.py) with labels added to its nodes.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

FILES = Path(__file__).resolve().parents[1] / "frontend" / "fixtures" / "circuit-tracer-files"


def _labelled_graph() -> dict:
    doc = json.loads((FILES / "dallas-tiny.json").read_text())
    for i, node in enumerate(n for n in doc["nodes"] if n["feature_type"] == "cross layer transcoder"):
        node["clerp"] = f"label {i}: capital \u2192 \"Austin\""
    doc["qParams"]["clerps"] = json.dumps([[str(doc["nodes"][0]["feature"]), "saved in circuit-tracer"]])
    return doc


def test_imported_circuit_tracer_graph_keeps_every_label(make_stack, sqlite_url) -> None:
    stack = make_stack(sqlite_url)
    stack.register(stack.client, "ada")
    stack.login(stack.client, "ada")
    doc = _labelled_graph()
    body = gzip.compress(json.dumps(doc, indent=2).encode())
    r = stack.client.post("/api/graphs/import", content=body, params={"slug": "dallas-tiny"},
                          headers={"Content-Type": "application/gzip"})
    assert r.status_code == 201, r.text
    assert r.json()["scan"] == "tiny-llama-plt" and r.json()["node_count"] == len(doc["nodes"])

    stored = stack.client.get("/api/graphs/dallas-tiny/data").json()
    def clerps(graph: dict) -> dict[str, str]:
        return {n["node_id"]: n["clerp"] for n in graph["nodes"]}

    assert clerps(stored) == clerps(doc)
    assert stored["qParams"] == doc["qParams"]
    assert stored["links"] == doc["links"]

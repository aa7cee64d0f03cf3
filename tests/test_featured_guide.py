"""A featured graph as the setup stores it (firststart.featured `featured_doc`, firststart.store):
the model's top next tokens in its JSON and its database row, the suggested subgraph as its
default view, and a fresh suggestion once the dashboards step writes feature labels in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import glassbox
from firststart import store
from firststart.featured import featured_doc, get_featured, top_predictions
from glassbox.testing import make_random_transcoders_dir, make_tiny_model_dir
from persistence.db import make_engine, make_sessionmaker
from persistence.graphs import decompress
from persistence.migrate import upgrade
from persistence.tables import Feature, GraphBlob


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("featured-guide")
    model_dir = make_tiny_model_dir(root / "model", "llama")
    tc_dir = make_random_transcoders_dir(root / "tc", model_dir)
    model, tcs = glassbox.load_model(model_dir, device="cpu"), glassbox.load_transcoders(tc_dir)
    return {"model": model, "model_dir": model_dir, "tc_dir": tc_dir, "tcs": tcs}


@pytest.fixture
def sessions(tmp_path: Path) -> Any:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    upgrade(engine)
    yield make_sessionmaker(engine)
    engine.dispose()


def test_a_featured_graph_carries_the_top_tokens_and_opens_on_its_suggested_subgraph(
    tiny, sessions, graph_schema
):
    item = get_featured("jordan")
    # the tiny word-level tokenizer reads the prompt's words as unknown; "Fact :" gives it a start
    result = glassbox.trace(f"Fact : {item.prompt}", model=tiny["model"], transcoders=tiny["tcs"])
    top = top_predictions(tiny["model"], item)
    assert len(top) == 5 and [t["prob"] for t in top] == sorted((t["prob"] for t in top), reverse=True)
    doc = featured_doc(result, item, scan="tiny", top=top)
    section = doc["metadata"]["glassbox"]
    assert section["top_predictions"] == top
    assert section["featured"] == {"key": "jordan", "expected": " basketball"}
    guide = section["guide"]
    assert doc["qParams"]["pinnedIds"] == guide["pinned_ids"] and guide["pinned_ids"]
    assert doc["qParams"]["supernodes"] == guide["supernodes"]
    jsonschema.validate(doc, graph_schema)

    with sessions() as session:
        model = store.ensure_model(session, name="tiny", source=str(tiny["model_dir"]), display_name="Tiny")
        tset = store.ensure_transcoder_set(session, model, name="tc", source=str(tiny["tc_dir"]),
                                           n_layers=tiny["model"].n_layers, description="random")
        record = store.store_featured_graph(session, item, doc, model=model, tset=tset, scores=(0.5, 0.5),
                                            max_feature_nodes=100)
        assert record.parameters["featured"]["top_predictions"] == top  # for lists that do not read JSON

        from server.routes.pages import featured

        assert featured(session)[0]["top"] == top  # the home page's featured list

        # the dashboards step labels the features later; the note then names them by label
        carrier = guide["carriers"][0] if guide["carriers"] else guide["against"][0]
        layer, index, _ = (int(x) for x in carrier["node_id"].split("_"))
        session.add(Feature(transcoder_set_id=tset.id, layer=layer, index=index, auto_label="sporty words"))
        session.commit()
        assert store.label_featured_graph(session, record) >= 1
        stored = json.loads(decompress(session.get(GraphBlob, record.id).data_gz))
    relabelled = stored["metadata"]["glassbox"]["guide"]
    assert relabelled["pinned_ids"] == guide["pinned_ids"]  # labels change words, not numbers
    assert "sporty words" in " ".join(relabelled["note"]) and "sporty words" not in " ".join(guide["note"])
    assert stored["qParams"]["pinnedIds"] == relabelled["pinned_ids"]

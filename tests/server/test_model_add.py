"""Adding a model and a transcoder set as a job (worker/model_add.py): from the admin API on
both stacks, from `glassbox add-model` against a SQLite database, and a set that does not fit.
The transcoders come from the fake hub (tests/_fake_hub.py), the model from a local folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from _fake_hub import FakeHub
from sqlalchemy import select
from typer.testing import CliRunner

from glassbox.testing import make_random_transcoders_dir, make_tiny_model_dir
from persistence import registry
from persistence.db import make_engine, make_sessionmaker
from persistence.tables import Job, ModelEntry
from worker.add_model_cli import add_model_command

HUB_SET = "someorg/tiny-tc"  # fits the tiny model: 2 layers, d_model 16
SHORT_SET = "someorg/short-tc"  # its first layer only


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("model-add")
    model = make_tiny_model_dir(root / "tiny-model", "llama")
    tc = make_random_transcoders_dir(root / "tc", model)
    short = root / "short-tc"
    short.mkdir()
    (short / "layer_0.safetensors").write_bytes((tc / "layer_0.safetensors").read_bytes())
    config = yaml.safe_load((tc / "config.yaml").read_text())
    config["transcoders"] = ["layer_0.safetensors"]
    (short / "config.yaml").write_text(yaml.safe_dump(config))
    return {"model": model, "tc": tc, "short": short}


@pytest.fixture
def fake_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, assets: dict[str, Path]) -> FakeHub:
    hub = FakeHub(tmp_path / "hub").install(monkeypatch)
    hub.add_folder(HUB_SET, assets["tc"])
    hub.add_folder(SHORT_SET, assets["short"])
    return hub


def test_admin_adds_a_model_with_a_hub_set_as_a_job(pg_stack, fake_hub, assets):
    admin, stack = pg_stack.client, pg_stack
    body = {"model": str(assets["model"]), "transcoders": HUB_SET, "display_name": "Tiny, added"}

    ada = stack.user_client("ada")
    assert ada.post("/api/admin/models", json=body).status_code == 403
    for bad in (
        {**body, "transcoders": "not a reference"},
        {**body, "model": "justaword"},
        {**body, "model": "relative/../folder"},
        {**body, "transcoders": "./relative-folder"},
        {**body, "name": "no spaces"},
    ):
        refused = admin.post("/api/admin/models", json=bad)
        assert refused.status_code == 422, (bad, refused.text)

    first = admin.post("/api/admin/models", json=body)
    assert first.status_code == 202, first.text
    job = first.json()
    assert (job["kind"], job["status"], job["model"], job["transcoders"]) == (
        "model-add", "queued", "tiny-model", "tiny-tc"
    )
    again = admin.post("/api/admin/models", json={**body, "display_name": "Another label"}).json()
    assert (again["id"], again["deduplicated"]) == (job["id"], True)
    listed = admin.get("/api/admin/jobs", params={"kind": "model-add"}).json()
    assert [j["id"] for j in listed] == [job["id"]]
    assert "tiny-model" not in {m["name"] for m in admin.get("/api/models").json()}  # not before it is ready

    stack.process_jobs()
    done = stack.job(admin, job["id"])
    assert (done["status"], done["progress"], done["error"]) == ("done", 1.0, None)
    assert done["result"]["n_layers"] == 2 and done["result"]["d_model"] == 16
    assert any(HUB_SET in call for call in fake_hub.downloads())

    models = {m["name"]: m for m in admin.get("/api/models").json()}
    added = models["tiny-model"]
    assert added["display_name"] == "Tiny, added"
    assert [(t["name"], t["is_default"], t["n_layers"]) for t in added["transcoder_sets"]] == [
        ("tiny-tc", True, 2)
    ]
    form = admin.get("/new", params={"format": "json"}).json()
    assert "tiny-model" in {m["name"] for m in form["models"]}
    repeated = admin.post("/api/admin/models", json=body)
    assert repeated.status_code == 409 and "already has a transcoder set" in repeated.text


def test_a_set_that_does_not_fit_fails_the_job_and_registers_nothing(
    make_stack, sqlite_url, fake_hub, assets
):
    stack = make_stack(sqlite_url)
    stack.register(stack.client, "admin")
    stack.login(stack.client, "admin")
    body = {"model": str(assets["model"]), "transcoders": SHORT_SET, "name": "tiny"}
    submitted = stack.client.post("/api/admin/models", json=body)
    assert submitted.status_code == 202, submitted.text

    failed = stack.wait_for_status(stack.client, submitted.json()["id"], "failed")
    assert "has 1 layers but model" in failed["error"] and "has 2" in failed["error"]
    assert "\n" not in failed["error"]
    assert stack.client.get("/api/models").json() == []
    with stack.services.sessions() as session:
        assert registry.find_model(session, "tiny") is None
    page = stack.client.get("/admin/jobs")
    assert 'data-kind="model-add"' in page.text and "has 1 layers but model" in page.text


def test_cli_adds_a_model_to_a_database(sqlite_url, home, assets, tmp_path, monkeypatch):
    monkeypatch.setenv("GLASSBOX_DATABASE_URL", sqlite_url)
    monkeypatch.chdir(assets["model"].parent)  # relative folders are made absolute
    runner = CliRunner()

    result = runner.invoke(_cli(), ["tiny-model", "--transcoders", "tc", "--name", "tiny"])
    assert result.exit_code == 0, result.output
    assert "registered model tiny with transcoder set tc" in result.output
    sessions = make_sessionmaker(make_engine(sqlite_url))
    with sessions() as session:
        model = registry.get_model(session, "tiny")
        assert model.source == str(assets["model"]) and [t.source for t in model.transcoder_sets] == [
            str(assets["tc"])
        ]
        job = session.scalar(select(Job).where(Job.kind == "model-add"))
        assert (job.status, job.owner_id, job.progress) == ("done", None, 1.0)

    again = runner.invoke(_cli(), ["tiny-model", "--transcoders", "tc", "--name", "tiny"])
    assert again.exit_code == 1 and "already has a transcoder set named 'tc'" in again.output
    bad = runner.invoke(_cli(), ["tiny-model", "--transcoders", "nothing here"])
    assert bad.exit_code == 2 and "neither a folder nor a hub repo id" in bad.output
    bad_name = runner.invoke(_cli(), ["tiny-model", "--transcoders", "tc", "--name", "two words"])
    assert bad_name.exit_code == 2 and "is not a registry name" in bad_name.output
    with sessions() as session:
        assert len(session.scalars(select(ModelEntry)).all()) == 1


def _cli():
    import typer

    app = typer.Typer()
    app.command()(add_model_command)
    return app

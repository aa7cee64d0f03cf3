"""GLASSBOX_SETUP_CHAT_MODEL: the setup adds a second model with a chat template and trains a
transcoder set for it. On tiny models: the plan gets the chat model's steps only when the
setting is on, and those steps pull nothing, train a set and register both."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from test_setup import TINY_TRAIN

import glassbox
from firststart.engine import default_hooks
from firststart.pipeline import pending_steps, run_pipeline
from firststart.plan import CHAT_MODEL, SetupPlan
from firststart.steps import SetupContext, build_steps
from firststart.training import train_transcoders
from glassbox.testing import WORDS, make_tiny_model_dir
from persistence import registry
from persistence.db import make_engine, make_sessionmaker
from persistence.migrate import upgrade
from persistence.settings import Settings

CHAT_STEPS = ["chat-model", "chat-transcoders"]


def test_the_setting_adds_the_chat_model_to_the_plan(monkeypatch):
    monkeypatch.delenv("GLASSBOX_SETUP_CHAT_MODEL", raising=False)
    assert SetupPlan.from_settings(Settings()).chat_model is None  # off by default
    monkeypatch.setenv("GLASSBOX_SETUP_CHAT_MODEL", "true")
    plan = SetupPlan.from_settings(Settings())
    assert plan.chat_model == CHAT_MODEL
    chat = plan.chat_plan()
    assert chat is not None and chat.model_name == CHAT_MODEL and chat.trains and chat.featured == ()
    assert SetupPlan.from_dict(plan.to_dict()) == plan  # the job row keeps it
    assert SetupPlan.from_dict({**plan.to_dict(), "chat_model": None}).chat_plan() is None


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A tiny base model, a tiny chat model (a chat template of its own), a corpus, a database."""
    monkeypatch.setenv("GLASSBOX_HOME", str(tmp_path / "home"))
    base = make_tiny_model_dir(tmp_path / "tiny-base", "llama")
    chat = make_tiny_model_dir(tmp_path / "tiny-chat", "llama", seed=1)
    (chat / "chat_template.jinja").write_text(
        "{{ bos_token }}{% for m in messages %}{{ m['content'] }} {% endfor %}"
    )
    rng = random.Random(0)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(" ".join(rng.choice(WORDS) for _ in range(40)) for _ in range(60)))
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    upgrade(engine)
    plan = SetupPlan(model=str(base), corpus=str(corpus), train_features=16, device="cpu")
    return {"plan": plan, "chat": chat, "sessions": make_sessionmaker(engine), "home": tmp_path / "home"}


def _context(tiny: dict[str, Any], plan: SetupPlan, loaded: list[str]) -> SetupContext:
    def load_model(source: str, dtype: str, device: str | None) -> Any:
        loaded.append(source)
        return glassbox.load_model(source, dtype="float32", device="cpu")

    def train(model: Any, **kwargs: Any) -> Path:
        return train_transcoders(model, **kwargs, options=TINY_TRAIN)

    def no_download(*args: Any) -> None:
        raise AssertionError(f"the setup tried to download {args}")

    hooks = replace(default_hooks(), load_model=load_model, train_transcoders=train, pull_model=no_download)
    return SetupContext(plan=plan, sessions=tiny["sessions"], hooks=hooks, home=tiny["home"])


def test_the_chat_model_steps_train_and_register_a_set_for_it(tiny):
    loaded: list[str] = []
    without = _context(tiny, tiny["plan"], loaded)
    assert not set(CHAT_STEPS) & {step.name for step in build_steps(without)}

    plan = replace(tiny["plan"], chat_model=str(tiny["chat"]))
    ctx = _context(tiny, plan, loaded)
    steps = build_steps(ctx)
    assert [step.name for step in steps][-2:] == CHAT_STEPS
    assert set(CHAT_STEPS) <= set(pending_steps(steps))

    chat_steps = steps[-2:]
    states = run_pipeline(chat_steps, report=lambda fraction, phase, states: None)
    assert [s.status for s in states] == ["done", "done"]
    assert loaded == [str(tiny["chat"])]  # the chat model, not the base model, was trained on
    chat_plan = plan.chat_plan()
    assert chat_plan is not None
    with tiny["sessions"]() as session:
        model = registry.find_model(session, chat_plan.model_name)
        assert model is not None and model.source == str(tiny["chat"])
        assert [t.name for t in model.transcoder_sets] == [chat_plan.transcoders_name]
        assert model.transcoder_sets[0].source == str(chat_plan.trained_dir(tiny["home"]))
        assert registry.find_model(session, plan.model_name) is None  # the base model's steps did not run
    assert (chat_plan.trained_dir(tiny["home"]) / "config.yaml").is_file()
    assert pending_steps(chat_steps) == []  # a second run skips them

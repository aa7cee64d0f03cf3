"""The five setup steps: model, corpus, transcoders, featured graphs, feature dashboards.

Each step checks its own result (files under GLASSBOX_HOME, rows in the database) and makes
what is missing; the heavy work goes through `EngineHooks`. `SetupContext` holds what the
steps share: the plan, database sessions, and the one model loaded at a time.

The order opens the site early: the transcoder set is registered as soon as it exists (people
can trace from then on), the featured graphs are traced next, and the dashboards come last.
Graphs do not wait for them: the viewer reads feature labels and dashboards from the database
when it opens a graph, and the dashboards step writes the auto labels into the featured graphs'
JSON once they exist.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firststart import store
from firststart.engine import EngineHooks
from firststart.featured import featured_doc, top_predictions
from firststart.pipeline import SetupError, Step, StepProgress
from firststart.plan import SetupPlan
from persistence import registry
from persistence.db import SessionFactory

log = logging.getLogger(__name__)

STORE_BATCH = 256  # dashboards read from the features store at a time

# Expected seconds of each step on a 2-core CPU (docs/deployment.md): the steps' weights, so the
# progress bar follows time and the pages can say how long is left before a step has measured
# its own pace.
MODEL_PULL_S = 200.0
CORPUS_BUILD_S = 220.0
TRANSCODERS_OVERHEAD_S = 60.0  # loading, calibration and export around the training budget
TRANSCODERS_CHECK_S = 30.0  # a given set: load, check against the model, register
DASHBOARDS_BASE_S = 60.0
DASHBOARDS_PER_TOKEN_S = 0.0055  # 100,000 tokens: about 9.5 minutes
FEATURED_BASE_S = 10.0
FEATURED_PER_GRAPH_S = 10.0


@dataclass
class SetupContext:
    """What the steps share. Keeps one model loaded (in one dtype) and one transcoder set."""

    plan: SetupPlan
    sessions: SessionFactory
    hooks: EngineHooks
    home: Path
    _model: tuple[str, Any] | None = field(default=None, repr=False)
    _transcoders: tuple[int, Any] | None = field(default=None, repr=False)

    def model(self, dtype: str) -> Any:
        """The plan's model in `dtype`; asking for another dtype drops the loaded one first."""
        if self._model is None or self._model[0] != dtype:
            self._model = self._transcoders = None
            self._model = (dtype, self.hooks.load_model(self.plan.model, dtype, self.plan.device))
        return self._model[1]

    def transcoders(self, model: Any) -> Any:
        """The plan's transcoder set, on the device of `model`."""
        if self._transcoders is None or self._transcoders[0] != id(model):
            self._transcoders = (id(model), self.hooks.load_transcoders(self.transcoders_source, model))
        return self._transcoders[1]

    def release(self) -> None:
        self._model = self._transcoders = None

    @property
    def transcoders_source(self) -> str:
        return self.plan.transcoders_source(self.home)

    def registered(self) -> tuple[Any, Any] | tuple[None, None]:
        """(model entry, transcoder set entry) of the plan, or (None, None) if not both exist."""
        with self.sessions() as session:
            model = registry.find_model(session, self.plan.model_name)
            tset = store.find_transcoder_set(session, self.plan.model_name, self.plan.transcoders_name)
        return (model, tset) if model is not None and tset is not None else (None, None)


def build_steps(ctx: SetupContext) -> list[Step]:
    """The steps of `ctx.plan`, in order."""
    return [ModelStep(ctx), CorpusStep(ctx), TranscodersStep(ctx), FeaturedGraphsStep(ctx), FeaturesStep(ctx),
            *chat_model_steps(ctx)]


def chat_model_steps(ctx: SetupContext) -> list[Step]:
    """The optional chat model (plan.chat_model): its model and transcoders steps, run on a
    context of its own after the main model's steps (which release their model first)."""
    chat_plan = ctx.plan.chat_plan()
    if chat_plan is None:
        return []
    chat = SetupContext(plan=chat_plan, sessions=ctx.sessions, hooks=ctx.hooks, home=ctx.home)
    model, transcoders = ModelStep(chat), _ReleasingTranscodersStep(chat)
    model.name, model.title = "chat-model", "Chat model"
    transcoders.name, transcoders.title = "chat-transcoders", "Chat model transcoders"
    return [model, transcoders]


# ---- 1. model --------------------------------------------------------------------------------


class ModelStep:
    name, title, weight = "model", "Demo model", MODEL_PULL_S

    def __init__(self, ctx: SetupContext):
        self.ctx = ctx

    def is_done(self) -> bool:
        plan = self.ctx.plan
        if not self.ctx.hooks.model_present(plan.model):
            return False
        with self.ctx.sessions() as session:
            return registry.find_model(session, plan.model_name) is not None

    def run(self, progress: StepProgress) -> None:
        plan = self.ctx.plan
        if not self.ctx.hooks.model_present(plan.model):
            progress(0.0, f"pulling {plan.model}")
            self.ctx.hooks.pull_model(plan.model)
        with self.ctx.sessions() as session:
            store.ensure_model(session, name=plan.model_name, source=plan.model, display_name=plan.model)


# ---- 2. corpus -------------------------------------------------------------------------------


class CorpusStep:
    name, title, weight = "corpus", "Text corpus", CORPUS_BUILD_S

    def __init__(self, ctx: SetupContext):
        self.ctx = ctx

    def is_done(self) -> bool:
        return self.ctx.hooks.corpus_present(self.ctx.plan.corpus)

    def run(self, progress: StepProgress) -> None:
        progress(0.0, f"building {self.ctx.plan.corpus}")
        self.ctx.hooks.build_corpus(self.ctx.plan.corpus, self.ctx.plan.model)


# ---- 3. transcoders --------------------------------------------------------------------------


class TranscodersStep:
    name, title = "transcoders", "Transcoders"

    def __init__(self, ctx: SetupContext):
        self.ctx = ctx
        plan = ctx.plan
        self.weight = plan.train_budget_s + TRANSCODERS_OVERHEAD_S if plan.trains else TRANSCODERS_CHECK_S

    def _files_ready(self) -> bool:
        if not self.ctx.plan.trains:
            return True
        return (self.ctx.plan.trained_dir(self.ctx.home) / "config.yaml").is_file()

    def is_done(self) -> bool:
        return self._files_ready() and self.ctx.registered()[1] is not None

    def run(self, progress: StepProgress) -> None:
        ctx, plan = self.ctx, self.ctx.plan
        if not self._files_ready():
            progress(0.0, "training")
            ctx.hooks.train_transcoders(
                ctx.model("bfloat16"),
                corpus=plan.corpus,
                out_dir=plan.trained_dir(ctx.home),
                budget_s=plan.train_budget_s,
                n_features=plan.train_features,
                name=plan.transcoders_name,
                progress=progress,
            )
        progress(1.0, "checking and registering")
        tset = ctx.transcoders(ctx.model("bfloat16"))
        how = f"trained by the setup for {plan.train_budget_s:.0f} s" if plan.trains else "given to the setup"
        with ctx.sessions() as session:
            model = registry.find_model(session, plan.model_name)
            if model is None:
                raise SetupError(f"model {plan.model_name!r} is not registered (the model step did not run)")
            store.ensure_transcoder_set(
                session,
                model,
                name=plan.transcoders_name,
                source=ctx.transcoders_source,
                n_layers=tset.n_layers,
                description=f"{tset.n_layers}-layer transcoders, {how}",
            )


class _ReleasingTranscodersStep(TranscodersStep):
    """The transcoders step of a model no later step uses: its model is dropped afterwards."""

    def run(self, progress: StepProgress) -> None:
        try:
            super().run(progress)
        finally:
            self.ctx.release()


# ---- 5. feature dashboards -------------------------------------------------------------------


class FeaturesStep:
    """Dashboards of every feature, stored in the database; then the featured graphs, traced
    before the dashboards existed, get their features' auto labels written into their JSON."""

    name, title = "features", "Feature dashboards"

    def __init__(self, ctx: SetupContext):
        self.ctx = ctx
        self.weight = DASHBOARDS_BASE_S + ctx.plan.feature_tokens * DASHBOARDS_PER_TOKEN_S

    @property
    def folder(self) -> Path:
        return self.ctx.plan.features_dir(self.ctx.home)

    def _open_store(self) -> Any:
        from glassbox.features import FeatureStore

        return FeatureStore.open(self.folder)

    def is_done(self) -> bool:
        if not (self.folder / "manifest.json").is_file():
            return False
        _, tset = self.ctx.registered()
        if tset is None:
            return False
        live = sum(row["n_features"] - row["dead"] for row in self._open_store().layer_summary())
        with self.ctx.sessions() as session:
            if store.count_dashboards(session, tset.id) < live:
                return False
        return not self._unlabelled()

    def run(self, progress: StepProgress) -> None:
        ctx = self.ctx
        if not (self.folder / "manifest.json").is_file():
            model = ctx.model("bfloat16")
            ctx.hooks.build_features(
                model,
                ctx.transcoders(model),
                corpus=ctx.plan.corpus,
                n_tokens=ctx.plan.feature_tokens,
                out_dir=self.folder,
                progress=lambda f, detail: progress(0.75 * f, detail),
            )
            ctx.release()  # the last step that needs the model
        self._store_all(lambda f, detail: progress(0.75 + 0.2 * f, detail))
        self._label_featured(lambda f, detail: progress(0.95 + 0.05 * f, detail))

    def _unlabelled(self) -> list[str]:
        """Slugs of the featured graphs whose JSON lacks the dashboards' auto labels."""
        with self.ctx.sessions() as session:
            records = store.unlabelled_featured(session, [item.slug for item in self.ctx.plan.featured])
            return [r.slug for r in records]

    def _label_featured(self, progress: StepProgress) -> None:
        slugs = self._unlabelled()
        for i, slug in enumerate(slugs):
            with self.ctx.sessions() as session:
                for record in store.unlabelled_featured(session, [slug]):
                    n = store.label_featured_graph(session, record)
                    log.info("featured graph %s: %d feature labels from the dashboards", slug, n)
            progress((i + 1) / len(slugs), f"labelling featured graphs {i + 1}/{len(slugs)}")

    def _store_all(self, progress: StepProgress) -> None:
        """Copy every feature that fired into the database (those stored already are skipped)."""
        _, tset = self.ctx.registered()
        if tset is None:
            raise SetupError("the transcoder set is not registered (the transcoders step did not run)")
        fs = self._open_store()
        keys = [(layer, f) for layer in fs.layers for f in range(fs.d_transcoder)]
        with self.ctx.sessions() as session:
            done = store.stored_dashboards(session, tset.id)
            todo = [key for key in keys if key not in done]
            for start in range(0, len(todo), STORE_BATCH):
                batch = fs.get_many(todo[start : start + STORE_BATCH])
                store.store_dashboards(session, tset, (d for d in batch if d["n_fires"] > 0))
                progress(
                    (start + len(batch)) / len(todo), f"storing dashboards {start + len(batch)}/{len(todo)}"
                )
        fs.close()


# ---- 4. featured graphs ----------------------------------------------------------------------


class FeaturedGraphsStep:
    """The featured prompts, traced as soon as the transcoder set exists. Their JSON gets no
    feature labels here: the dashboards step (after this one) writes them in, and the viewer
    reads labels and dashboards from the database meanwhile."""

    name, title = "featured", "Featured graphs"

    def __init__(self, ctx: SetupContext):
        self.ctx = ctx
        self.weight = FEATURED_BASE_S + FEATURED_PER_GRAPH_S * len(ctx.plan.featured)

    def _missing(self) -> list[Any]:
        """Featured prompts whose slug does not hold the setup's own graph: a graph someone
        else put there does not count (store_featured_graph moves it aside)."""
        with self.ctx.sessions() as session:
            present = store.present_slugs(session, [item.slug for item in self.ctx.plan.featured])
        return [item for item in self.ctx.plan.featured if item.slug not in present]

    def is_done(self) -> bool:
        return not self._missing()

    def run(self, progress: StepProgress) -> None:
        ctx, plan = self.ctx, self.ctx.plan
        model_entry, tset_entry = ctx.registered()
        if model_entry is None:
            raise SetupError("the model or transcoder set is not registered (an earlier step did not run)")
        model = ctx.model("float32")
        tset = ctx.transcoders(model)
        missing = self._missing()
        for i, item in enumerate(missing):

            def sub(fraction: float, detail: str, i: int = i, key: str = item.key) -> None:
                progress((i + fraction) / len(missing), f"tracing {key} ({detail})")

            result = ctx.hooks.trace(
                item.prompt,
                model=model,
                transcoders=tset,
                max_feature_nodes=plan.max_feature_nodes,
                progress=sub,
            )
            doc = featured_doc(result, item, scan=plan.model_name, top=top_predictions(model, item))
            with ctx.sessions() as session:
                store.store_featured_graph(
                    session,
                    item,
                    doc,
                    model=model_entry,
                    tset=tset_entry,
                    scores=_scores(result),
                    max_feature_nodes=plan.max_feature_nodes,
                )
            log.info("featured graph %s stored", item.slug)
        ctx.release()


def _scores(result: Any) -> tuple[float | None, float | None]:
    scores = getattr(result, "scores", None) or {}
    return scores.get("replacement"), scores.get("completeness")

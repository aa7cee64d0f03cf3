"""`glassbox relabel`: new automatic labels for a feature store, and for the database that copied it.

The setup copies a store's dashboards and auto labels into the database once; a store labelled
again (`glassbox features relabel`) would not reach it. This command relabels the store and
then replaces the auto labels of the transcoder set's features in the database (human labels
are kept: they live apart). Defaults: the setup's own store, model and set (GLASSBOX_SETUP_*).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from glassbox.cli.common import fail_cleanly


@fail_cleanly
def relabel_command(
    store: Annotated[
        Path | None,
        typer.Option(
            help="Feature store folder (default: the setup's, GLASSBOX_HOME/features/<model>--<set>)."
        ),
    ] = None,
    model: Annotated[str | None, typer.Option(help="Registered model name (default: the setup's).")] = None,
    transcoders: Annotated[
        str | None, typer.Option(help="Registered transcoder set name (default: the setup's).")
    ] = None,
    store_only: Annotated[
        bool, typer.Option("--store-only", help="Relabel the store; leave the database alone.")
    ] = False,
) -> None:
    """Label every feature of a store again with the current automatic labeller (no model is
    loaded; dashboards stay) and copy the labels into the database's features of that set."""
    from firststart.plan import SetupPlan
    from firststart.store import find_transcoder_set
    from glassbox.features import FeatureStore
    from glassbox.features.labels import METHOD
    from glassbox.features.relabel import relabel_store
    from glassbox.home import glassbox_home
    from persistence import features as feature_rows
    from persistence.db import make_engine, make_sessionmaker
    from persistence.settings import Settings

    settings = Settings()
    plan = SetupPlan.from_settings(settings)
    folder = store or plan.features_dir(glassbox_home())
    n = relabel_store(folder)
    typer.echo(f"labelled {n} features of {folder} ({METHOD})")
    if store_only:
        return
    model_name, set_name = model or plan.model_name, transcoders or plan.transcoders_name
    engine = make_engine(settings.resolved_database_url())
    try:
        with make_sessionmaker(engine)() as session:
            tset = find_transcoder_set(session, model_name, set_name)
            if tset is None:
                typer.secho(
                    f"no transcoder set {set_name!r} of model {model_name!r} in the database: only "
                    "the store was relabelled",
                    err=True,
                    fg="yellow",
                )
                raise typer.Exit(1)
            fs = FeatureStore.open(folder)
            changed = 0
            for layer in fs.layers:
                labels = fs.labels_with_provenance(layer)
                changed += feature_rows.replace_auto_labels(session, tset, layer, labels)
            fs.close()
    finally:
        engine.dispose()
    typer.echo(f"updated the auto labels of {changed} features of {model_name}/{set_name} in the database")

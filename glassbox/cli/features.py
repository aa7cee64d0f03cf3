"""`glassbox features ...`: build dashboards for a transcoder set, look at them, export them, and
ask an LLM to explain a feature."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from glassbox.cli.common import fail_cleanly

app = typer.Typer(help="Feature dashboards: build, inspect, export, explain with an LLM.",
                  no_args_is_help=True)


def _parse_layers(text: str | None) -> list[int] | None:
    """'0-3,7' -> [0, 1, 2, 3, 7]."""
    from glassbox.features.errors import FeatureBuildError

    if not text:
        return None
    layers: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            layers.extend(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise FeatureBuildError(f"--layers takes numbers and ranges like 0-3,7, not {text!r}") from None
    return layers


class _Bars:
    """tqdm bars for the build phases, with token rate and ETA while streaming."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: Any = None
        self.phase = ""

    def __call__(self, phase: str, done: int, total: int) -> None:
        if self.quiet:
            return
        from tqdm import tqdm

        if phase != self.phase:
            self.close()
            self.phase = phase
            if phase == "tokenize":
                typer.echo("tokenizing the corpus ...", err=True)
                return
            unit = {"stream": "tok", "finalize": "layer"}.get(phase, "it")
            self.bar = tqdm(total=total, initial=done, desc=phase, unit=unit, unit_scale=phase == "stream",
                            file=sys.stderr, dynamic_ncols=True, smoothing=0.05)
        if self.bar is not None:
            self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@app.command("build")
@fail_cleanly
def build_command(
    model: Annotated[str, typer.Option("--model", "-m", help="Demo model name, local HF folder or hub id.")],
    transcoders: Annotated[str, typer.Option("--transcoders", "-t", help="Transcoder folder or hub id.")],
    corpus: Annotated[str, typer.Option("--corpus", "-c", help="Built corpus name or folder, .txt/.md/.jsonl "
                                        "file or folder of them.")],
    tokens: Annotated[int, typer.Option("--tokens", "-n", help="Tokens to read (BOS included).")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Store folder (default: "
                      "GLASSBOX_HOME/features/<model>--<transcoders>).")] = None,
    layers: Annotated[str | None, typer.Option(help="Only these layers, e.g. 0-3,7 (default: all).")] = None,
    split: Annotated[str, typer.Option(help="Corpus split: train, test or all.")] = "train",
    seq_len: Annotated[int, typer.Option(help="Tokens per row (BOS + seq_len - 1 of one document).")] = 128,
    batch_size: Annotated[int, typer.Option(help="Rows per forward pass.")] = 32,
    top_k: Annotated[int, typer.Option(help="Top activating contexts kept per feature.")] = 20,
    dtype: Annotated[str, typer.Option(help="Model dtype: bfloat16 (fast on CPU) or float32.")] = "bfloat16",
    tc_dtype: Annotated[str, typer.Option(help="Transcoder dtype; bfloat16 makes the encoder ~2.5x cheaper "
                                          "on CPU, with slightly rounded activations.")] = "float32",
    device: Annotated[str | None, typer.Option(help="cpu or cuda (default: cuda when present).")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch (default: all).")] = None,
    checkpoint_seconds: Annotated[float, typer.Option(help="Seconds between checkpoints.")] = 120.0,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Discard a finished or unfinished build "
                                            "in the output folder.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Build feature dashboards in one streaming pass; run it again to resume an interrupted build."""
    import time

    import torch

    from glassbox.corpus import iter_texts
    from glassbox.features import BuildConfig, build_features, default_output_dir
    from glassbox.models import load_model
    from glassbox.models.loaded import parse_dtype
    from glassbox.transcoders import load_transcoders

    cfg = BuildConfig(seq_len=seq_len, batch_size=batch_size, top_k=top_k)
    chosen = _parse_layers(layers)
    iter_texts(corpus, split=split)  # a missing corpus fails now, before the model loads
    if threads:
        torch.set_num_threads(threads)
    if not quiet:
        typer.echo(f"loading {model} and {transcoders} ...", err=True)
    loaded = load_model(model, dtype=dtype, device=device)
    tset = load_transcoders(transcoders, device=loaded.device, dtype=parse_dtype(tc_dtype))
    tset.check_compatible(loaded)
    folder = output or default_output_dir(loaded.name, tset.name)
    bars = _Bars(quiet)
    t0 = time.monotonic()
    try:
        build_features(loaded, tset, corpus, n_tokens=tokens, output_dir=folder, config=cfg, layers=chosen,
                       split=split, overwrite=overwrite, progress=bars, checkpoint_seconds=checkpoint_seconds)
    finally:
        bars.close()
    typer.echo(f"built {folder} in {time.monotonic() - t0:.0f} s ({_size_mb(folder):.1f} MB)")


@app.command("info")
@fail_cleanly
def info_command(
    store: Annotated[Path, typer.Argument(help="Feature store folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """What a store was built from, and how many features fired."""
    from glassbox.features import FeatureStore

    fs = FeatureStore.open(store)
    m = fs.manifest
    if as_json:
        typer.echo(json.dumps(m, indent=1))
        return
    typer.echo(f"model {m['model']['name']}  transcoders {m['transcoders']['name']}  corpus {m['corpus']}")
    typer.echo(f"{m['n_tokens']:,} tokens ({m['n_tokens_counted']:,} counted), {len(m['layers'])} layers x "
               f"{m['d_transcoder']} features; streamed in {m['stream_seconds']:.0f} s; "
               f"{_size_mb(fs.folder):.1f} MB")
    typer.echo(f"{'LAYER':>5} {'DEAD':>6} {'MEDIAN DENSITY':>15}")
    for row in fs.layer_summary():
        typer.echo(f"{row['layer']:>5} {row['dead'] / max(1, row['n_features']):>6.1%} "
                   f"{row['median_frequency']:>15.2e}")


@app.command("show")
@fail_cleanly
def show_command(
    store: Annotated[Path, typer.Argument(help="Feature store folder.")],
    layer: Annotated[int, typer.Argument(help="Layer.")],
    feature: Annotated[int, typer.Argument(help="Feature index within the layer.")],
    examples: Annotated[int, typer.Option(help="Examples to print per group.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole dashboard dict as JSON.")] = False,
) -> None:
    """Print one feature's label, statistics, logits and examples."""
    from glassbox.features import FeatureStore

    d = FeatureStore.open(store).get(layer, feature)
    if as_json:
        typer.echo(json.dumps(d, ensure_ascii=False, indent=1))
        return
    typer.echo(f"layer {layer} feature {feature}: {d['auto_label']}")
    typer.echo(f"density {d['activation_frequency']:.3e} ({d['n_fires']:,} of {d['n_tokens']:,} tokens), "
               f"max {d['act_max']:.3g}, mean {d['act_mean']:.3g}")
    typer.echo("top logits:    " + "  ".join(repr(t) for t in d["top_logits"]))
    typer.echo("bottom logits: " + "  ".join(repr(t) for t in d["bottom_logits"]))
    for group in d["examples_quantiles"]:
        typer.echo(f"-- {group['quantile_name']}")
        for ex in group["examples"][:examples]:
            typer.echo(f"  {ex['act']:8.3f}  {_marked(ex)}")


def _marked(example: dict[str, Any]) -> str:
    toks = list(example["tokens"])
    i = example["max_index"]
    toks[i] = f"[[{toks[i]}]]"
    return "".join(toks).replace("\n", "⏎")


@app.command("relabel")
@fail_cleanly
def relabel_command(
    store: Annotated[Path, typer.Argument(help="Feature store folder.")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Label every feature of a store again with the current automatic labeller (no model needed;
    the dashboards stay). A server that copied the old labels: `glassbox relabel` updates them."""
    import time

    from glassbox.features.labels import METHOD
    from glassbox.features.relabel import relabel_store

    bars = _Bars(quiet)
    t0 = time.monotonic()
    try:
        n = relabel_store(store, progress=lambda done, total: bars("finalize", done, total))
    finally:
        bars.close()
    typer.echo(f"labelled {n} features of {store} ({METHOD}) in {time.monotonic() - t0:.1f} s")


@app.command("export")
@fail_cleanly
def export_command(
    store: Annotated[Path, typer.Argument(help="Feature store folder.")],
    layer: Annotated[int | None, typer.Argument(help="Layer (omit with --all).")] = None,
    feature: Annotated[int | None, typer.Argument(help="Feature (omit to export the whole layer).")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="JSON file for one feature (default: "
                      "stdout), folder for many.")] = None,
    all_layers: Annotated[bool, typer.Option("--all", help="Export every feature of every layer.")] = False,
) -> None:
    """Write features in Anthropic's feature-details format (one file per feature: <index>.json)."""
    from glassbox.features import FeatureStore, write_feature_details
    from glassbox.features.errors import FeatureStoreError
    from glassbox.features.export import to_feature_details

    fs = FeatureStore.open(store)
    if layer is not None and feature is not None and not all_layers:
        details = to_feature_details(fs.get(layer, feature))
        text = json.dumps(details, ensure_ascii=False, separators=(",", ":"))
        if output is None:
            typer.echo(text)
        else:
            output.write_text(text)
        return
    if output is None:
        raise FeatureStoreError("exporting many features needs --output FOLDER")
    layers = fs.layers if all_layers or layer is None else [layer]
    n = 0
    for lay in layers:
        keys = [(lay, f) for f in range(fs.d_transcoder)]
        for start in range(0, len(keys), 500):
            for d in fs.get_many(keys[start: start + 500]):
                write_feature_details(d, output / f"{d['index']}.json")
                n += 1
    typer.echo(f"wrote {n} features to {output}")


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in Path(folder).iterdir() if p.is_file()) / 1e6


@app.command("explain")
@fail_cleanly
def explain_command(
    features: Annotated[Path, typer.Option("--features", help="Feature store folder.")],
    layer: Annotated[int, typer.Option("--layer", "-l", help="Layer.")],
    feature: Annotated[int, typer.Option("--feature", "-f", help="Feature index within the layer.")],
    url: Annotated[str | None, typer.Option(envvar="GLASSBOX_EXPLAINER_URL", show_envvar=True,
                   help="Base URL of an OpenAI-compatible chat API, e.g. http://127.0.0.1:8080/v1.")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", envvar="GLASSBOX_EXPLAINER_MODEL",
                     show_envvar=True, help="Model name the endpoint is asked for.")] = None,
    api_key: Annotated[str | None, typer.Option(envvar="GLASSBOX_EXPLAINER_API_KEY", show_envvar=True,
                       show_default=False, help="API key (sent as a Bearer token).")] = None,
    timeout: Annotated[float, typer.Option(envvar="GLASSBOX_EXPLAINER_TIMEOUT_S", show_envvar=True,
                       help="Seconds to wait for each answer.")] = 60.0,
    retries: Annotated[int, typer.Option(help="Retries of an answer 429 or 5xx, with backoff.")] = 3,
    seed: Annotated[int, typer.Option(help="Seed of the held-out and random contexts.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the explanation as JSON.")] = False,
) -> None:
    """Ask an LLM to explain one feature, then score the explanation on held-out contexts."""
    from dataclasses import asdict

    from glassbox.features import FeatureStore
    from glassbox.features.explain import ChatClient, ExplainerError, explain_store_feature

    if not url:
        raise ExplainerError("no explainer endpoint: give --url (or set GLASSBOX_EXPLAINER_URL), e.g. "
                             "http://127.0.0.1:8080/v1 for a local llama.cpp server")
    client = ChatClient(url, model=model, api_key=api_key, timeout_s=timeout, retries=retries)
    result = explain_store_feature(client, FeatureStore.open(features), layer, feature, seed=seed)
    if as_json:
        typer.echo(json.dumps(asdict(result), default=str, ensure_ascii=False))
        return
    typer.echo(f"layer {layer} feature {feature}: {result.text}")
    score = "no score (too few contexts)" if result.score is None else \
        f"score {result.score:.2f} on {result.n_scored} held-out contexts (0.50 is chance)"
    typer.echo(f"{score}; {result.explainer_model}, {result.prompt_version}, "
               f"{result.created_at:%Y-%m-%d %H:%M} UTC")

"""`glassbox trace "PROMPT" --model M --transcoders T -o graph.json`"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from glassbox.cli.common import fail_cleanly, progress_bar

Opt = typer.Option


@fail_cleanly
def trace_command(
    prompt: Annotated[str, typer.Argument(help="The prompt to explain (BOS is added for you).")],
    model: Annotated[str, Opt("--model", "-m", help="Demo model name, local HF folder or hub id.")],
    transcoders: Annotated[str, Opt("--transcoders", "-t", help="Transcoder folder or hub repo id.")],
    output: Annotated[Path, Opt("--output", "-o", help="Graph JSON to write (.json or .json.gz).")
                      ] = Path("graph.json"),
    save_pt: Annotated[Path | None, Opt(help="Also save the full unpruned graph (.pt).")] = None,
    max_feature_nodes: Annotated[int | None, Opt(
        help="Visit at most this many features, most influential first (default: all; the graph "
        "is dense over its nodes, so set e.g. 1000 for prompts over ~30 tokens).")] = None,
    max_n_logits: Annotated[int, Opt(help="At most this many logit targets.")] = 10,
    desired_logit_prob: Annotated[float, Opt(
        help="Take top logits until their probability sums to this.")] = 0.95,
    target: Annotated[list[str] | None, Opt(
        help="Explain this token instead of the top logits (repeatable).")] = None,
    logit_diff: Annotated[tuple[str, str] | None, Opt(
        help="Explain logit(A) - logit(B), e.g. --logit-diff ' Austin' ' Dallas'.")] = None,
    batch_size: Annotated[int, Opt(help="Rows per backward sweep.")] = 64,
    node_threshold: Annotated[float, Opt(help="Keep nodes carrying this share of influence.")] = 0.8,
    edge_threshold: Annotated[float, Opt(help="Keep edges carrying this share of edge score.")] = 0.98,
    dtype: Annotated[str, Opt(help="Model dtype: float32 or bfloat16.")] = "float32",
    device: Annotated[str | None, Opt(help="cpu or cuda (default: cuda when present).")] = None,
    slug: Annotated[str | None, Opt(help="Graph slug in the JSON (default: from the prompt).")] = None,
) -> None:
    """Trace the attribution graph of PROMPT and write it as graph JSON."""
    from glassbox.attribution.targets import prompt_logit_difference
    from glassbox.models import load_model
    from glassbox.tracing import trace
    from glassbox.transcoders import load_transcoders

    typer.echo(f"loading {model} ...", err=True)
    loaded = load_model(model, dtype=dtype, device=device)
    tset = load_transcoders(transcoders, device=loaded.device)
    targets = None
    if logit_diff is not None:
        targets = [prompt_logit_difference(loaded, prompt, logit_diff[0], logit_diff[1])]
    elif target:
        targets = list(target)
    with progress_bar("tracing") as report:
        result = trace(prompt, model=loaded, transcoders=tset, max_feature_nodes=max_feature_nodes,
                       max_n_logits=max_n_logits, desired_logit_prob=desired_logit_prob,
                       targets=targets, batch_size=batch_size, node_threshold=node_threshold,
                       edge_threshold=edge_threshold, progress=report)
    result.save_json(output, slug=slug)
    if save_pt is not None:
        result.graph.save(save_pt)
    g = result.graph
    pairs = zip(g.logit_targets[:3], g.logit_probabilities[:3].tolist(), strict=False)
    top = ", ".join(f"{t.token_str!r} {p:.3f}" for t, p in pairs)
    typer.echo(f"{result.summary()}; top logits: {top}; wrote {output}")

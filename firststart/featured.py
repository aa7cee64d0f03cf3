"""Featured examples in the app: the first-start setup traces each prompt of glassbox.examples and
stores the graph as a public graph with the slug `featured-<key>`, with the model's top next
tokens and a suggested subgraph with a note (`featured_doc`), so a newcomer has real graphs to
open at once. The prompts, their measurements and the phrasings tried are in glassbox/examples.py
(reproduce the table there: `python -m firststart.featured`).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from glassbox.errors import GlassboxError
from glassbox.examples import FEATURED, FeaturedPrompt

# Keys earlier setups stored in their plans, and the example that took each one's place.
RENAMED = {"dallas": "tokyo"}
TOP_K = 5  # next tokens stored with each featured graph


def get_featured(key: str) -> FeaturedPrompt:
    """The featured example called `key` (or the one that replaced it); the error lists the keys
    that exist."""
    key = RENAMED.get(key, key)
    for item in FEATURED:
        if item.key == key:
            return item
    raise GlassboxError(f"no featured example {key!r}; known: {', '.join(f.key for f in FEATURED)}")


@dataclass(frozen=True)
class Measurement:
    """What a model puts after a featured prompt."""

    key: str
    top: list[tuple[str, float]]
    expected_prob: float | None  # probability of the expected token (its first token)


def measure(model: Any, prompts: tuple[FeaturedPrompt, ...] = FEATURED, *, k: int = 5) -> list[Measurement]:
    """Top-k next tokens of `model` (a LoadedModel) after each prompt, and the expected token's
    probability: the check that a phrasing suits a model."""
    import torch

    out = []
    for item in prompts:
        with torch.no_grad():
            logits = model.forward(model.tokenize(item.prompt), logits_at="last").logits[0, -1]
        probs = torch.softmax(logits.float(), dim=-1)
        values, ids = probs.topk(min(k, probs.shape[-1]))
        top = [(model.tokenizer.decode([int(i)]), float(v)) for v, i in zip(values, ids, strict=True)]
        expected = None
        if item.expected:
            first = model.tokenizer(item.expected, add_special_tokens=False)["input_ids"][0]
            expected = float(probs[int(first)])
        out.append(Measurement(item.key, top, expected))
    return out


def top_predictions(model: Any, item: FeaturedPrompt, *, k: int = TOP_K) -> list[dict[str, Any]]:
    """The model's top-k next tokens after the prompt, as stored with a featured graph:
    [{"token": text, "prob": p}, ...], most likely first."""
    (row,) = measure(model, (item,), k=k)
    return [{"token": token, "prob": round(prob, 6)} for token, prob in row.top]


def featured_doc(
    result: Any,
    item: FeaturedPrompt,
    *,
    scan: str,
    top: list[dict[str, Any]],
    feature_labels: Mapping[tuple[int, int], str] | None = None,
) -> dict[str, Any]:
    """A featured example's graph JSON: the trace (a glassbox TraceResult) with the model's top
    next tokens and the example's expected token in metadata.glassbox, and the suggested
    subgraph and its note as the graph's default view (glassbox.graph.guide)."""
    extra = {"glassbox": {"top_predictions": top, "featured": {"key": item.key, "expected": item.expected}}}
    doc = result.to_json(slug=item.slug, scan=scan, feature_labels=feature_labels, extra_metadata=extra)
    return refresh_guide(doc)


def refresh_guide(doc: dict[str, Any]) -> dict[str, Any]:
    """Compute the suggested subgraph of `doc` again (after its labels changed) and make it the
    default view; changes and returns `doc`."""
    from glassbox.graph.guide import apply_guide, suggest_subgraph

    return apply_guide(doc, suggest_subgraph(doc))


def _main(argv: list[str]) -> None:
    """`python -m firststart.featured [MODEL]`: the measurements table of the docstring for MODEL."""
    import glassbox

    model = glassbox.load_model(argv[0] if argv else "gemma-3-270m", device="cpu")
    print("| key | top next tokens | expected token, its probability |\n|---|---|---|")
    for item, m in zip(FEATURED, measure(model, k=3), strict=True):
        top = ", ".join(f"{t!r} {p:.3f}" for t, p in m.top)
        rank = next((i + 1 for i, (t, _) in enumerate(m.top) if t == item.expected), None)
        where = f"top {rank}" if rank else "not in the top 3"
        print(f"| {item.key} | {top} | {item.expected!r} {m.expected_prob or 0:.3f} ({where}) |")


if __name__ == "__main__":
    _main(sys.argv[1:])

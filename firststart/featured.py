"""Featured example prompts: the examples people know from the circuit-tracer announcement,
phrased so that a small *base* model (the demo model, Gemma 3 270M) continues them sensibly.

The first-start setup (firststart) traces each of them and stores the graphs as public
graphs with the slug `featured-<key>`, so a newcomer has real graphs to open at once.

A base model continues text; it does not answer questions. So each prompt ends where the
answer's first token comes next, and gives the model the frame it needs (quotes, a worked
example, the start of a rhyme). Measured on gemma-3-270m (the PyPI Q4_K_M GGUF de-quantized to
float32, CPU), next-token probabilities, top 3 (reproduce: `python -m firststart.featured`):

| key | top next tokens | expected token, its probability |
|---|---|---|
| opposite-en | 'large' 0.336, 'big' 0.148, 'small' 0.059 | 'large' 0.336 (top 1) |
| opposite-fr | 'grand' 0.346, 'grande' 0.136, 'petit' 0.095 | 'grand' 0.346 (top 1) |
| opposite-zh | '大' 0.566, '高' 0.129, '小' 0.083 | '大' 0.566 (top 1) |
| rhyme-cat | ' cat' 0.346, ' mouse' 0.236, '\\n' 0.051 | ' cat' 0.346 (top 1) |
| addition | '1' 0.413, '8' 0.273, '9' 0.235 | '9' 0.235 (top 3: the 270M model does not add reliably) |
| dallas | ' Dallas' 0.293, ' The' 0.122, ' Texas' 0.117 | ' Austin' 0.013 (stops at the first hop, Texas) |
| jordan | ' basketball' 0.611, ' his' 0.123, ' the' 0.065 | ' basketball' 0.611 (top 1) |
| batkin | ' the' 0.098, ' hockey' 0.085, ' his' 0.078 | none: an unknown name gets no confident sport |
| karma-yoga | ' results' 0.112, ' status' 0.092, ' outside' 0.076 | ' results' 0.112 (top 1) |
| gratitude | ' connected' 0.234, ' positive' 0.126, ' alive' 0.057 | ' connected' 0.234 (top 1) |

Measured 2026-11-26 on this project's 2-core CPU machine (float32).

Phrasings tried and dropped (same model): `36+59=` and `calc: 36+59=` ('1' first, '9' at
0.12-0.17); `Fact: the capital of the state containing Dallas is` (' the' 0.157);
`"小"的反义词是"` ('小' 0.149, '大' 0.025, fixed by the one-shot "高/低" pair);
`The opposite of small is` (' large' 0.301 but a bare continuation, no quotes as in the
announcement); `To apply Karma Yoga at work, you should` (' be' 0.101).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from glassbox.errors import GlassboxError


@dataclass(frozen=True)
class FeaturedPrompt:
    """One featured example: where its graph lives, what it is about, and what a model that
    gets it right puts next (`expected`, as the token's text; empty when there is no answer)."""

    key: str
    title: str
    prompt: str
    expected: str

    @property
    def slug(self) -> str:
        return f"featured-{self.key}"


FEATURED: tuple[FeaturedPrompt, ...] = (
    FeaturedPrompt(
        "opposite-en", 'The opposite of "small" (English)', 'The opposite of "small" is "', "large"
    ),
    FeaturedPrompt(
        "opposite-fr", 'The opposite of "small" (French)', 'Le contraire de "petit" est "', "grand"
    ),
    FeaturedPrompt(
        "opposite-zh", 'The opposite of "small" (Chinese)', '"高"的反义词是"低"，"小"的反义词是"', "大"
    ),
    FeaturedPrompt(
        "rhyme-cat",
        'A rhyming couplet ending on "cat"',
        "A rhyming couplet:\nThe little mouse sat on the mat,\nIt was afraid of the big black",
        " cat",
    ),
    FeaturedPrompt("addition", "36 + 59", "23+14=37\n45+21=66\n36+59=", "9"),
    FeaturedPrompt(
        "dallas",
        "The capital of the state containing Dallas (two hops)",
        "Q: What is the capital of the state containing Dallas?\nA:",
        " Austin",
    ),
    FeaturedPrompt(
        "jordan",
        "Michael Jordan plays ... (a known entity)",
        "Fact: Michael Jordan plays the sport of",
        " basketball",
    ),
    FeaturedPrompt(
        "batkin",
        "Michael Batkin plays ... (an unknown entity)",
        "Fact: Michael Batkin plays the sport of",
        "",
    ),
    FeaturedPrompt(
        "karma-yoga",
        "How to apply Karma Yoga at work",
        "To apply Karma Yoga at work, do your job without attachment to the",
        " results",
    ),
    FeaturedPrompt(
        "gratitude",
        "How gratitude affects wellbeing",
        "Gratitude improves wellbeing because it makes people feel more",
        " connected",
    ),
)


def get_featured(key: str) -> FeaturedPrompt:
    """The featured example called `key`; the error lists the keys that exist."""
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


def _main(argv: list[str]) -> None:
    """`python -m firststart.featured [MODEL]`: print the measurements table for MODEL."""
    import glassbox

    model = glassbox.load_model(argv[0] if argv else "gemma-3-270m", device="cpu")
    for m in measure(model):
        top = ", ".join(f"{t!r} {p:.3f}" for t, p in m.top)
        expected = "-" if m.expected_prob is None else f"{m.expected_prob:.3f}"
        print(f"{m.key:<12} expected p={expected:<6} top: {top}")


if __name__ == "__main__":
    _main(sys.argv[1:])

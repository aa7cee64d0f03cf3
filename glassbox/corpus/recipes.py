"""Named corpora: which sources a name builds, with what weights, and whether it is held out.

    offline-en        the English corpus (dictionaries, literature, Python docs, fortunes)
    offline           the multilingual default: offline-en's sources at 48%, modern technical
                      English 29%, French 12%, Chinese 11% (shares of characters)
    heldout-*         evaluation text from packages no training source reads; every document is
                      test text, and every training build is deduplicated against them

`glassbox transcoders eval` reports each held-out set beside the training corpus' own test split,
so a set is never judged only on text like its training data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from glassbox.corpus.sources import DEFAULT_MIX, SOURCES


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    weights: Mapping[str, float] = field(default_factory=dict)
    heldout: bool = False

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(SOURCES)
        if unknown:
            raise ValueError(f"recipe {self.name}: unknown sources {sorted(unknown)}")
        if any(SOURCES[s].heldout != self.heldout for s in self.weights):
            raise ValueError(f"recipe {self.name}: held-out and training sources mixed")


def _scaled(mix: Mapping[str, float], total: float) -> dict[str, float]:
    norm = sum(mix.values())
    return {name: round(weight * total / norm, 6) for name, weight in mix.items()}


_MODERN_EN = ("handbook_en", "foldoc", "jargon", "developers_reference", "gnu_standards")
_FRENCH = ("handbook_fr", "debian_reference_fr", "man_pages_fr")
_CHINESE = ("handbook_zh", "debian_reference_zh", "man_pages_zh")
OFFLINE_MIX = {**_scaled(DEFAULT_MIX, 0.48),
               **{s: SOURCES[s].weight for s in _MODERN_EN + _FRENCH + _CHINESE}}

RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe("offline-en", "English: dictionaries, literature, Python docs, Debian Reference, fortunes",
           dict(DEFAULT_MIX)),
    Recipe("offline", "offline-en plus modern technical English, French and Chinese", OFFLINE_MIX),
    Recipe("heldout-prose-en", "held out: Debian's history, manifesto, social contract, constitution; "
           "licence texts", {"heldout_history_en": 0.6, "heldout_licenses_en": 0.4}, heldout=True),
    Recipe("heldout-tech-en", "held out: the Debian FAQ and New Maintainers' Guide (English)",
           {"heldout_faq_en": 0.5, "heldout_maint_guide_en": 0.5}, heldout=True),
    Recipe("heldout-fr", "held out: the Debian FAQ and New Maintainers' Guide (French)",
           {"heldout_faq_fr": 0.5, "heldout_maint_guide_fr": 0.5}, heldout=True),
    Recipe("heldout-zh", "held out: the Debian FAQ and New Maintainers' Guide (Simplified Chinese)",
           {"heldout_faq_zh": 0.5, "heldout_maint_guide_zh": 0.5}, heldout=True),
)}

HELDOUT_SETS = tuple(name for name, r in RECIPES.items() if r.heldout)

"""What the first-start setup makes: one plain, serialisable description (stored in the job row).

The plan says which model to pull and register, where the transcoders come from (a folder or
hub id, or a budgeted training run), how many corpus tokens the feature dashboards read, and
which featured prompts are traced. Everything is derived from it by name, so a second run with
the same plan finds what the first one made and skips it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from firststart.featured import FEATURED, FeaturedPrompt
from glassbox.errors import GlassboxError
from persistence.settings import Settings

CHAT_MODEL = "smollm2-135m-instruct"  # GLASSBOX_SETUP_CHAT_MODEL: a demo model with a chat template
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_NOT_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def registry_name(source: str) -> str:
    """A registry name (letters, digits, '.', '_', '-') for a model or transcoder source:
    a folder's name, a hub id's repository name, or a demo name as it is."""
    text = source.rstrip("/")
    base = Path(text).name if ("/" in text or Path(text).expanduser().is_dir()) else text
    name = _NOT_NAME.sub("-", base).strip("-._")[:100]
    if not _NAME_OK.match(name):
        raise GlassboxError(f"cannot derive a registry name from {source!r}")
    return name


@dataclass(frozen=True)
class SetupPlan:
    """The demo content to make. `transcoders=None` means: train a budgeted set."""

    model: str = "gemma-3-270m"
    transcoders: str | None = None
    corpus: str = "offline"
    train_budget_s: float = 900.0
    train_features: int = 2048
    feature_tokens: int = 100_000
    max_feature_nodes: int = 1000
    device: str | None = None
    featured: tuple[FeaturedPrompt, ...] = field(default=FEATURED)
    chat_model: str | None = None  # a second model (with a chat template) and a set trained for it

    def __post_init__(self) -> None:
        if self.train_budget_s <= 0 or self.feature_tokens <= 0 or self.max_feature_nodes <= 0:
            raise GlassboxError(
                "the setup's training budget, feature tokens and feature nodes must be positive"
            )

    @property
    def model_name(self) -> str:
        """The model's name in the server's registry."""
        return registry_name(self.model)

    @property
    def trains(self) -> bool:
        return self.transcoders is None

    @property
    def transcoders_name(self) -> str:
        """The transcoder set's name in the registry (trained sets: `setup-plt-<features>`)."""
        if self.transcoders is None:
            return f"setup-plt-{self.train_features}"
        return registry_name(self.transcoders)

    def trained_dir(self, home: Path) -> Path:
        """Where a trained set is written: GLASSBOX_HOME/transcoders/<model>--<set>."""
        return home / "transcoders" / f"{self.model_name}--{self.transcoders_name}"

    def transcoders_source(self, home: Path) -> str:
        """What `load_transcoders` is given (and what the registry records)."""
        return self.transcoders if self.transcoders is not None else str(self.trained_dir(home))

    def features_dir(self, home: Path) -> Path:
        """Where the feature dashboards are built: GLASSBOX_HOME/features/<model>--<set>."""
        return home / "features" / f"{self.model_name}--{self.transcoders_name}"

    def chat_plan(self) -> SetupPlan | None:
        """The plan of the optional chat model: pulled, a set trained and both registered,
        like the main model, on the same corpus and budget; no dashboards or featured graphs."""
        if self.chat_model is None:
            return None
        return replace(self, model=self.chat_model, transcoders=None, featured=(), chat_model=None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["featured"] = [item.key for item in self.featured]
        return data

    @classmethod
    def from_settings(cls, settings: Settings) -> SetupPlan:
        """The plan the settings describe (GLASSBOX_SETUP_*, on GLASSBOX_DEVICE)."""
        return cls(
            model=settings.setup_model,
            transcoders=settings.setup_transcoders or None,
            corpus=settings.setup_corpus,
            train_budget_s=settings.setup_train_budget_s,
            train_features=settings.setup_train_features,
            feature_tokens=settings.setup_feature_tokens,
            max_feature_nodes=settings.setup_max_feature_nodes,
            device=settings.device,
            chat_model=CHAT_MODEL if settings.setup_chat_model else None,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SetupPlan:
        from firststart.featured import get_featured

        values = dict(data)
        values["featured"] = tuple(get_featured(key) for key in values.get("featured", []))
        return cls(**values)

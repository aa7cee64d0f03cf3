"""JSON bodies read strictly, once for every route: what Python's json module lets through but
JSON and the database do not is a 422 before any handler runs.

- NaN, Infinity and -Infinity are not JSON numbers, and a literal too large for a float (1e400)
  reads as infinity; stored, they make every later answer that includes them fail to serialise.
- A lone UTF-16 surrogate (an escape such as "\\ud800" without its pair, or its bytes sent as
  UTF-8) is valid JSON syntax but not Unicode: no database driver can encode it.
- Arrays and objects nested more than MAX_DEPTH deep: stored, every later answer that includes
  them fails to serialise.
- What Python's json module cannot read although it is JSON (bytes that are not UTF-8 text,
  integers over 4300 digits, nesting past the recursion limit) is a 422 like any other body that
  is not JSON; FastAPI would answer those with a bare 400.

Every router is an `APIRouter(route_class=StrictJSONRoute)`. Graph uploads, read as raw bytes,
get the same checks where they are parsed and stored (glassbox.graph.json_import,
persistence.graphs).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute


class InvalidJSON(json.JSONDecodeError):
    """Valid JSON syntax holding a value JSON or Unicode does not allow (FastAPI answers any
    JSONDecodeError from the body with a 422 `json_invalid`, carrying this message)."""


# Arrays and objects inside each other, at most: far more than any request needs; a stored value
# nested much deeper could not be sent back (the response serializer stops at 255 levels).
MAX_DEPTH = 64


def _refuse_constant(name: str) -> Any:
    raise InvalidJSON(f"{name} is not a JSON number (only finite numbers are)", name, 0)


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise InvalidJSON(f"{literal[:40]} is out of range for a number (it reads as infinite)", literal, 0)
    return value


def _valid_unicode(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def problem_in(value: Any, where: str = "body") -> str | None:
    """The first thing in parsed JSON that no answer or database could carry, as a sentence that
    says where (`body.items.3.name`): text that is not valid Unicode, or arrays and objects nested
    more than MAX_DEPTH deep. None when there is none. Walks iteratively (no recursion limit)."""
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            if not _valid_unicode(item):
                return f"{path} holds a lone UTF-16 surrogate, which is not valid Unicode"
        elif isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                return f"{path} nests arrays and objects more than {MAX_DEPTH} deep"
            if isinstance(item, list):
                stack.extend((child, f"{path}.{i}", depth + 1) for i, child in enumerate(item))
                continue
            for key, child in item.items():
                if not _valid_unicode(key):
                    return f"{path} has a key with a lone UTF-16 surrogate, which is not valid Unicode"
                stack.append((child, f"{path}.{key}", depth + 1))
    return None


def loads_strict(data: bytes | str) -> Any:
    """json.loads, refusing what `problem_in` finds, non-finite numbers, integers longer than
    Python reads (4300 digits) and nesting deeper than its recursion limit."""
    try:
        value = json.loads(data, parse_constant=_refuse_constant, parse_float=_finite_float)
    except json.JSONDecodeError:
        raise
    except UnicodeDecodeError as exc:  # bytes that are not UTF-8 (or UTF-16/32) text
        raise InvalidJSON(f"not UTF-8 text ({exc.reason} at byte {exc.start})", "", 0) from exc
    except RecursionError as exc:
        raise InvalidJSON(f"arrays and objects nested more than {MAX_DEPTH} deep", "", 0) from exc
    except ValueError as exc:  # an integer literal longer than Python converts
        raise InvalidJSON(f"an integer has more than {sys.get_int_max_str_digits()} digits", "", 0) from exc
    problem = problem_in(value)
    if problem is not None:
        raise InvalidJSON(problem, "", 0)
    return value


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_strict(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """An APIRoute whose handler reads the JSON body with `loads_strict`."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_handler

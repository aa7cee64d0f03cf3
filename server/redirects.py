"""Where a page may send the browser next (`?next=` after logging in): paths on this site only.

A raw-string check is not enough: browsers drop tabs and newlines from URLs, strip leading
spaces and control characters, and read a backslash as a slash, so `/\t/evil.example` opens
`//evil.example`, another site. Values holding any of those are refused outright; what is left
is parsed as a URL and kept only when it has no scheme and no host.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

_BROWSER_REWRITES = re.compile(r"[\x00-\x1f\x7f\\]")  # dropped or rewritten by browsers
_PLACEHOLDER_ORIGIN = "https://glassbox.invalid"


def same_site_path(value: str | None, *, fallback: str) -> str:
    """`value` when it is a path on this site (`/graph/x?y=1#z`), else `fallback`."""
    if not value or not value.startswith("/") or value.startswith("//") or _BROWSER_REWRITES.search(value):
        return fallback
    parts = urlsplit(value)
    resolved = urlsplit(urljoin(_PLACEHOLDER_ORIGIN + "/", value))
    if parts.scheme or parts.netloc or f"{resolved.scheme}://{resolved.netloc}" != _PLACEHOLDER_ORIGIN:
        return fallback
    return value

"""References to transcoder sets on the Hugging Face hub, and the only two calls that reach it.

A reference names a repo, optionally a folder or file inside it and a revision:

    owner/repo                         owner/repo@v1
    owner/repo/sub/folder@main         hf://owner/repo/sub/folder@abc123
    hf://owner/repo/layer_0.safetensors?revision=abc123   (circuit-tracer's spelling)

`gemma` and `llama` are circuit-tracer's short names for its two original sets. Everything
that downloads goes through `download` (and `list_files`), so tests can stand in a local hub.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from glassbox.errors import TranscoderError

ALIASES = {
    "gemma": "mwhanna/gemma-scope-transcoders",  # Gemma-2-2B, GemmaScope PLTs
    "llama": "mntss/transcoder-Llama-3.2-1B",  # Llama-3.2-1B PLTs
}
_REPO_ID = re.compile(r"[\w.-]+/[\w.-]+")
_OFFLINE_HINT = ("Offline? Converted sets load without the network once fetched; give a local "
                 "folder, or train a set with `glassbox transcoders train`.")


@dataclass(frozen=True)
class HubRef:
    """A repo on the hub, a path inside it ('' = its root) and a revision (None = main)."""

    repo_id: str
    path: str = ""
    revision: str | None = None

    def child(self, name: str) -> HubRef:
        """The file `name`, relative to this reference's folder."""
        return replace(self, path=f"{self.path}/{name}" if self.path else name)

    def parent(self) -> HubRef:
        return replace(self, path=self.path.rpartition("/")[0])

    def __str__(self) -> str:
        where = f"{self.repo_id}/{self.path}" if self.path else self.repo_id
        return f"hf://{where}" + (f"@{self.revision}" if self.revision else "")


def resolve_alias(spec: str) -> str:
    return ALIASES.get(spec.strip(), spec.strip())


def parse_hub_ref(spec: str) -> HubRef:
    """'[hf://]owner/repo[/path][@revision]' or 'hf://owner/repo/path?revision=...' -> HubRef."""
    text = resolve_alias(spec)
    revision = None
    if text.startswith("hf://"):
        parsed = urlparse(text)
        revision = parse_qs(parsed.query).get("revision", [None])[0] or None
        text = parsed.netloc + parsed.path
    if "@" in text:
        text, _, at_rev = text.rpartition("@")
        revision = revision or at_rev or None
    parts = [p for p in text.strip("/").split("/") if p]
    if len(parts) < 2 or not _REPO_ID.fullmatch("/".join(parts[:2])) or ".." in parts:
        raise TranscoderError(f"{spec!r} is neither a folder nor a hub repo id (owner/name)")
    return HubRef(repo_id="/".join(parts[:2]), path="/".join(parts[2:]), revision=revision)


def parse_hf_uri(uri: str) -> HubRef:
    """An `hf://owner/repo/file` entry of a config.yaml (with `?revision=` or `@revision`)."""
    if not uri.startswith("hf://"):
        raise TranscoderError(f"not an hf:// URI: {uri!r}")
    ref = parse_hub_ref(uri)
    if not ref.path:
        raise TranscoderError(f"hf:// URI needs owner/repo/file: {uri!r}")
    return ref


def download(ref: HubRef) -> Path:
    """The file `ref` in the local hub cache, downloading it (resumably) when missing."""
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(ref.repo_id, ref.path, revision=ref.revision))
    except Exception as exc:  # noqa: BLE001 - network, auth, missing file: all one message
        raise TranscoderError(f"cannot fetch {ref}: {exc}. {_OFFLINE_HINT}") from exc


def list_files(ref: HubRef) -> list[str]:
    """Every file path in the reference's repo (at its revision)."""
    from huggingface_hub import list_repo_files

    try:
        return list(list_repo_files(ref.repo_id, revision=ref.revision))
    except Exception as exc:  # noqa: BLE001
        raise TranscoderError(f"cannot list hub repo {ref.repo_id!r}: {exc}. {_OFFLINE_HINT}") from exc

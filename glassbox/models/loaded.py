"""A causal LM ready for attribution: HF weights, tokenizer and architecture adapter together."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from glassbox.errors import GlassboxError, ModelNotAvailableError
from glassbox.models.arch import ArchSpec, arch_spec_from_config, decoder, layer_modules
from glassbox.models.forward import ForwardResult, run_forward

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
          "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16,
          "float64": torch.float64}


def parse_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return DTYPES[dtype.lower()]
    except KeyError:
        raise GlassboxError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}") from None


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class LoadedModel:
    """An HF causal LM plus what Glassbox needs to run it layer by layer."""

    def __init__(self, hf_model: torch.nn.Module, tokenizer: Any, name: str) -> None:
        self.hf_model = hf_model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.spec: ArchSpec = arch_spec_from_config(hf_model.config)
        self.decoder = decoder(hf_model)
        self.layer_mods = [layer_modules(layer, self.spec) for layer in self.decoder.layers]
        for p in self.hf_model.parameters():
            p.requires_grad_(False)

    # ---- facts ---------------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        return self.spec.n_layers

    @property
    def d_model(self) -> int:
        return self.spec.d_model

    @property
    def vocab_size(self) -> int:
        return self.spec.vocab_size

    @property
    def device(self) -> torch.device:
        return self.decoder.embed_tokens.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.decoder.embed_tokens.weight.dtype

    @property
    def unembedding(self) -> torch.Tensor:
        """(V, d) rows whose dot product with the final normed residual gives the logits."""
        return self.hf_model.lm_head.weight

    # ---- tokens --------------------------------------------------------------------------
    def tokenize(self, prompt: str) -> list[int]:
        """Token ids with a BOS in front (circuit-tracer's rule), no other special tokens."""
        ids = list(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        special = set(self.tokenizer.all_special_ids)
        if not ids or ids[0] not in special:
            tok = self.tokenizer
            for candidate in (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id):
                if candidate is not None:
                    ids.insert(0, int(candidate))
                    break
        return ids

    def tokenize_chat(self, messages: list[dict[str, str]]) -> list[int]:
        """Token ids of chat messages through the model's chat template."""
        if not getattr(self.tokenizer, "chat_template", None):
            raise GlassboxError(f"model {self.name} has no chat template; give a plain prompt")
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return self.tokenize(text)

    def decode_tokens(self, ids: list[int] | torch.Tensor) -> list[str]:
        """Each id decoded on its own, for display."""
        return [self.tokenizer.decode([int(i)]) for i in ids]

    def as_tensor(self, ids: list[int]) -> torch.Tensor:
        return torch.tensor([ids], dtype=torch.long, device=self.device)

    # ---- running -------------------------------------------------------------------------
    def forward(self, ids: list[int] | torch.Tensor, **kwargs: Any) -> ForwardResult:
        tokens = ids if isinstance(ids, torch.Tensor) else self.as_tensor(ids)
        if tokens.dim() == 1:
            tokens = tokens[None]
        return run_forward(self, tokens.to(self.device), **kwargs)

    @torch.no_grad()
    def top_next_tokens(self, prompt: str, k: int = 10) -> list[tuple[str, float]]:
        """The model's k most likely next tokens after the prompt, with probabilities."""
        out = self.forward(self.tokenize(prompt), keep_layers=False, logits_at="last")
        probs = torch.softmax(out.logits[0, -1].float(), dim=-1)
        p, idx = probs.topk(min(k, probs.shape[-1]))
        return [(self.tokenizer.decode([int(i)]), float(v)) for v, i in zip(p, idx, strict=True)]


def load_model(
    name_or_path: str | Path,
    *,
    dtype: str | torch.dtype | None = torch.float32,
    device: str | torch.device | None = None,
) -> LoadedModel:
    """Load a causal LM from a local folder, a pulled demo model name, or a hub id."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    source = _resolve(str(name_or_path))
    torch_dtype = parse_dtype(dtype)
    dev = torch.device(device) if device is not None else default_device()
    try:
        arch_spec_from_config(AutoConfig.from_pretrained(source))  # fail fast on unsupported
        hf = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype)
        tok = AutoTokenizer.from_pretrained(source)
    except OSError as exc:
        raise ModelNotAvailableError(
            f"cannot load model {name_or_path!r}: {exc}. Use a local folder, a demo model "
            "(`glassbox models pull NAME`), or a hub id while online."
        ) from exc
    model = LoadedModel(hf.to(dev), tok, name=_display_name(name_or_path))
    log.info("loaded %s (%s, %d layers) on %s", model.name, model.spec.model_type, model.n_layers, dev)
    return model


def _resolve(name: str) -> str:
    """Map demo-model names to their converted folders; leave paths and hub ids alone."""
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    try:
        from glassbox.models import demo
    except ImportError:  # demo registry not present
        return name
    return str(demo.resolve(name))


def _display_name(name_or_path: str | Path) -> str:
    p = Path(str(name_or_path))
    return p.name if p.is_dir() else str(name_or_path)

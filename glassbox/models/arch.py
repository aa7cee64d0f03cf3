"""Architecture adapters: what differs between the decoder families Glassbox supports.

The forward pass (`glassbox.models.forward`) is written once; an `ArchSpec` tells it where
the norms sit, how attention is scaled and masked, and how embeddings and logits are scaled.
Everything else (projections, MLP, rotary embeddings) is taken from the Hugging Face modules
themselves, so the numbers match the reference implementation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from glassbox.errors import UnsupportedArchitectureError

# model_type (from config.json) -> family
SUPPORTED_MODEL_TYPES: dict[str, str] = {
    "llama": "llama",
    "mistral": "llama",
    "qwen2": "llama",
    "qwen3": "qwen3",
    "gemma2": "gemma2",
    "gemma3_text": "gemma3",
}


@dataclass(frozen=True)
class ArchSpec:
    """Static facts about one model, read from its config."""

    model_type: str
    family: str  # llama | qwen3 | gemma2 | gemma3
    n_layers: int
    d_model: int
    d_mlp: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    vocab_size: int
    norm_eps: float
    norm_offset: float  # Gemma norms multiply by (1 + weight)
    sandwich_norms: bool  # Gemma: norms after attention and around the MLP
    qk_norm: bool
    attn_scale: float
    attn_softcap: float | None
    final_softcap: float | None
    embed_scale: float
    layer_types: tuple[str, ...]  # "full_attention" | "sliding_attention" per layer
    sliding_window: int | None
    rotary_per_layer_type: bool  # Gemma 3 keeps one rotary table per layer type

    def window(self, layer: int) -> int | None:
        """Sliding-window size of a layer, or None for full causal attention."""
        if self.layer_types[layer] == "sliding_attention":
            return self.sliding_window
        return None


def supported_architectures() -> str:
    return ", ".join(sorted(SUPPORTED_MODEL_TYPES))


def text_config(config: Any) -> Any:
    """The text sub-config of a multimodal config (Gemma 3 4B+), else the config itself."""
    return getattr(config, "text_config", None) or config


def arch_spec_from_config(config: Any) -> ArchSpec:
    """Build an ArchSpec, or raise a clear error naming the supported architectures."""
    cfg = text_config(config)
    model_type = getattr(cfg, "model_type", None)
    family = SUPPORTED_MODEL_TYPES.get(str(model_type))
    if family is None:
        raise UnsupportedArchitectureError(
            f"architecture {model_type!r} is not supported; supported: {supported_architectures()}"
        )
    n_layers = int(cfg.num_hidden_layers)
    n_heads = int(cfg.num_attention_heads)
    d_model = int(cfg.hidden_size)
    head_dim = int(getattr(cfg, "head_dim", None) or d_model // n_heads)
    gemma = family in {"gemma2", "gemma3"}
    layer_types = tuple(getattr(cfg, "layer_types", None) or ["full_attention"] * n_layers)
    if gemma:
        attn_scale = float(cfg.query_pre_attn_scalar) ** -0.5
    else:
        attn_scale = head_dim**-0.5
    return ArchSpec(
        model_type=str(model_type),
        family=family,
        n_layers=n_layers,
        d_model=d_model,
        d_mlp=int(cfg.intermediate_size),
        n_heads=n_heads,
        n_kv_heads=int(getattr(cfg, "num_key_value_heads", None) or n_heads),
        head_dim=head_dim,
        vocab_size=int(cfg.vocab_size),
        norm_eps=float(cfg.rms_norm_eps),
        norm_offset=1.0 if gemma else 0.0,
        sandwich_norms=gemma,
        qk_norm=family in {"gemma3", "qwen3"},
        attn_scale=attn_scale,
        attn_softcap=getattr(cfg, "attn_logit_softcapping", None) if family == "gemma2" else None,
        final_softcap=getattr(cfg, "final_logit_softcapping", None),
        embed_scale=float(d_model**0.5) if gemma else 1.0,
        layer_types=layer_types,
        sliding_window=getattr(cfg, "sliding_window", None),
        rotary_per_layer_type=family == "gemma3",
    )


@dataclass(frozen=True)
class LayerModules:
    """The HF modules of one decoder layer, named by role rather than by family."""

    attn_norm: nn.Module  # norm before attention
    attn: nn.Module  # q/k/v/o projections (+ q_norm, k_norm)
    attn_out_norm: nn.Module | None  # Gemma: norm after attention
    mlp_norm: nn.Module  # norm before the MLP
    mlp: nn.Module
    mlp_out_norm: nn.Module | None  # Gemma: norm after the MLP


def layer_modules(layer: nn.Module, spec: ArchSpec) -> LayerModules:
    """A decoder layer's modules by role. Llama/Qwen's `post_attention_layernorm` is the pre-MLP
    norm; Gemma's is the norm after attention, with two more norms around the MLP."""
    sandwich = spec.sandwich_norms
    return LayerModules(
        attn_norm=layer.input_layernorm,
        attn=layer.self_attn,
        attn_out_norm=layer.post_attention_layernorm if sandwich else None,
        mlp_norm=layer.pre_feedforward_layernorm if sandwich else layer.post_attention_layernorm,
        mlp=layer.mlp,
        mlp_out_norm=layer.post_feedforward_layernorm if sandwich else None,
    )


def decoder(hf_model: nn.Module) -> nn.Module:
    """The decoder stack (`.layers`, `.embed_tokens`, `.norm`, `.rotary_emb`) of a causal LM."""
    inner = getattr(hf_model, "model", None)
    if inner is not None and hasattr(inner, "language_model"):  # multimodal wrapper
        inner = inner.language_model
    if inner is None or not hasattr(inner, "layers"):
        raise UnsupportedArchitectureError(
            f"{type(hf_model).__name__} has no decoder stack at `.model.layers`"
        )
    return inner

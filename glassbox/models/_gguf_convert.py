"""Convert a GGUF into a plain Hugging Face folder (safetensors + tokenizer), once.

transformers de-quantizes a GGUF to float on every load, which takes 20-60 s for the demo models.
Saving the de-quantized weights as safetensors makes later loads take about a second. The loaded
model still carries the GGUF quantizer and a `quantization_config`; both must go before saving,
or the saved folder would claim to be quantized and reload through the GGUF path again. The saved
weights are then checked to be bit-identical to the ones in memory.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from glassbox.errors import ModelNotAvailableError

logger = logging.getLogger(__name__)


def convert_gguf(gguf_path: Path, out_dir: Path) -> dict[str, Any]:
    """Write `out_dir` (model.safetensors, config, tokenizer); returns a summary of the model."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    except (ImportError, OSError, ValueError, KeyError) as exc:
        raise ModelNotAvailableError(f"transformers could not read {name}: {exc}") from exc
    _drop_quantization(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    _check_saved_weights(model, out_dir)
    return model_summary(model, tokenizer)


def _drop_quantization(model: Any) -> None:
    """Forget the GGUF origin so that save/reload is a plain float checkpoint."""
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def _check_saved_weights(model: Any, out_dir: Path) -> None:
    """Every saved tensor must equal the in-memory one bit for bit (tied weights are saved once)."""
    import torch
    from safetensors import safe_open

    state = model.state_dict()
    files = sorted(out_dir.glob("*.safetensors"))
    if not files:
        raise ModelNotAvailableError(f"no safetensors written to {out_dir}")
    for file in files:
        with safe_open(str(file), framework="pt") as reader:
            for key in reader.keys():
                if key not in state or not torch.equal(reader.get_tensor(key), state[key]):
                    raise ModelNotAvailableError(f"saved tensor {key} differs from the converted model")


def model_summary(model: Any, tokenizer: Any) -> dict[str, Any]:
    """The architecture facts recorded in the manifest."""
    cfg = model.config
    return {
        "architecture": (cfg.architectures or [type(model).__name__])[0],
        "model_type": cfg.model_type,
        "n_layers": cfg.num_hidden_layers,
        "d_model": cfg.hidden_size,
        "d_mlp": getattr(cfg, "intermediate_size", None),
        "vocab": cfg.vocab_size,
        "tokenizer_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "dtype": str(model.dtype).removeprefix("torch."),
        "n_params": sum(p.numel() for p in model.parameters()),
    }

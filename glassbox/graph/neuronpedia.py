"""The graph-JSON vocabulary shared with circuit-tracer, Neuronpedia and Anthropic's viewer.

Node ids (schema_version 1):

    feature    "{layer}_{feature}_{pos}"      feature field = cantor_pair(layer, feature)
    error      "{layer}_-1_{pos}"             feature field = -1
    embedding  "E_{token_id}_{pos}"           feature field = pos, layer "E"
    logit      "{n_layers + 1}_{vocab_idx}_{last_pos}"   feature field = vocab_idx

circuit-tracer's own exporter names errors "0_{layer}_{pos}", which collides with layer-0
feature ids; its fork and this module use "{layer}_-1_{pos}". Readers must tell node kinds
apart by `feature_type`, never by the shape of the id.
"""

from __future__ import annotations

import math
import re
from typing import Any

SCHEMA_VERSION = 1

FEATURE = "cross layer transcoder"  # circuit-tracer uses this name for per-layer transcoders too
ERROR = "mlp reconstruction error"
EMBEDDING = "embedding"
LOGIT = "logit"
EMBEDDING_LAYER = "E"


def cantor_pair(layer: int, feature: int) -> int:
    """Neuronpedia's single-integer feature id: (l + f)(l + f + 1) / 2 + f."""
    if layer < 0 or feature < 0:
        raise ValueError(f"cantor_pair needs non-negative arguments, got ({layer}, {feature})")
    s = layer + feature
    return s * (s + 1) // 2 + feature


def cantor_unpair(value: int) -> tuple[int, int]:
    """(layer, feature) from `cantor_pair`'s value; exact for any size (integer sqrt)."""
    if value < 0:
        raise ValueError(f"cantor_unpair needs a non-negative value, got {value}")
    w = (math.isqrt(8 * value + 1) - 1) // 2
    feature = value - w * (w + 1) // 2
    return w - feature, feature


def logit_layer(n_layers: int) -> int:
    """Logit nodes sit one layer above the last MLP plus one, as circuit-tracer writes them."""
    return n_layers + 1


def feature_node_id(layer: int, feature: int, pos: int) -> str:
    return f"{layer}_{feature}_{pos}"


def error_node_id(layer: int, pos: int) -> str:
    return f"{layer}_-1_{pos}"


def token_node_id(token_id: int, pos: int) -> str:
    return f"E_{token_id}_{pos}"


def logit_node_id(n_layers: int, vocab_idx: int, pos: int) -> str:
    return f"{logit_layer(n_layers)}_{vocab_idx}_{pos}"


def feature_js_id(layer: int, feature: int) -> str:
    """jsNodeId groups one feature across positions (hover highlights every occurrence)."""
    return f"{layer}_{feature}-0"


def error_js_id(layer: int, pos: int) -> str:
    return f"{layer}_-1-{pos}"


def token_js_id(token_id: int, pos: int) -> str:
    return f"E_{token_id}-{pos}"


def logit_js_id(vocab_idx: int, pos: int) -> str:
    return f"L_{vocab_idx}-{pos}"


def logit_clerp(token: str, prob: float) -> str:
    return f'Output "{token}" (p={prob:.3f})'


def embedding_clerp(token: str) -> str:
    return f'Emb: "{token}"'


def error_clerp(token: str) -> str:
    return f'Err: mlp "{token}"'


_LOGIT_CLERP = re.compile(r'^\s*(?:output|logit)\s*:?\s*(["\'])(?P<tok>.*)\1\s*\(p=(?P<p>[^)]*)\)\s*$',
                          re.IGNORECASE | re.DOTALL)


def parse_logit_clerp(clerp: str) -> tuple[str | None, float | None]:
    """(token, probability) from `Output "tok" (p=0.123)` (or Neuronpedia's variants)."""
    match = _LOGIT_CLERP.match(clerp or "")
    if match is None:
        return None, None
    try:
        prob = float(match.group("p"))
    except ValueError:
        prob = None
    return match.group("tok"), prob


def default_qparams() -> dict[str, Any]:
    """Empty viewer state: nothing pinned, no supernodes."""
    return {"pinnedIds": [], "supernodes": [], "linkType": "both", "clickedId": "", "sg_pos": ""}

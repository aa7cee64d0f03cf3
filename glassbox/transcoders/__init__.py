"""Transcoder sets (per-layer and cross-layer): loading, saving, the math they share."""

from glassbox.transcoders.base import LayerWeights, TranscoderSet
from glassbox.transcoders.io import load_transcoders, save_transcoders

__all__ = ["LayerWeights", "TranscoderSet", "load_transcoders", "save_transcoders"]

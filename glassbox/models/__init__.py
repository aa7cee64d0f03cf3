"""Loading causal LMs and running them layer by layer."""

from glassbox.models.arch import ArchSpec, supported_architectures
from glassbox.models.loaded import LoadedModel, load_model

__all__ = ["ArchSpec", "LoadedModel", "load_model", "supported_architectures"]

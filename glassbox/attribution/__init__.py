"""Exact attribution graphs under the frozen replacement model."""

from glassbox.attribution.attribute import attribute, partial_influence
from glassbox.attribution.context import AttributionContext
from glassbox.attribution.targets import CustomTarget, logit_difference

__all__ = ["AttributionContext", "CustomTarget", "attribute", "logit_difference", "partial_influence"]

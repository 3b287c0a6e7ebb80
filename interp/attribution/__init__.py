"""Captum attribution maps of units and of naming decisions: `attribute()` runs the step."""

from interp.attribution.step import attribute

__all__ = ["attribute"]

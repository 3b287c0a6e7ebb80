"""Causal ablations: silence units chosen by type, block or name inside the image tower and
measure what changes in zero-shot naming, against random ablations of equal size."""

from interp.ablation.step import ablate

__all__ = ["ablate"]

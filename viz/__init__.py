"""Figures, unit cards and the static HTML atlas."""

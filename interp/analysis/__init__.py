"""Neuron-level analysis: top-N, receptive fields, neuron features, CSI, hue, Eq. 1, unit types.

Indices are pure numpy functions; torch appears only where a model runs (rf, csi re-run).
"""

"""Run models, hook their blocks, store activations and compute neuron indices."""

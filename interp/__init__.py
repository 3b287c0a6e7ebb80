"""Run models, hook their blocks, store activations and compute neuron indices."""


def version() -> str:
    """The installed chromadissect's version ("unknown" when run from a bare checkout)."""
    from importlib import metadata

    try:
        return metadata.version("chromadissect")
    except metadata.PackageNotFoundError:
        return "unknown"

"""Shared fixtures: a tiny seeded CLIP (64 px, random init) loaded the way the commands load it."""

from __future__ import annotations

import pytest

TINY = {"model": "interp.models:tiny_clip", "pretrained": "none", "seed": 0, "layers": None}


@pytest.fixture(scope="session")
def tiny_settings() -> dict:
    """`load_model` keyword arguments of the tiny test model (also what run.json records)."""
    return dict(TINY)


@pytest.fixture(scope="session")
def tiny_loaded():
    """The tiny model as `load_model` returns it (CPU, eval mode). Do not modify it."""
    from interp.models import load_model

    return load_model(**{k: v for k, v in TINY.items() if v is not None})


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` need CUDA: skipped, with the reason, where there is none."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)

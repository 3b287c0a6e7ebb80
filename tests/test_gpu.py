"""The CUDA path: extraction on the GPU stores what the CPU stores (skipped without CUDA)."""

from __future__ import annotations

import numpy as np
import pytest

from interp.api import Run
from interp.store import open_store

TINY = {"model": "interp.models:tiny_clip", "pretrained": "none"}


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_cuda_extraction_matches_cpu(tmp_path, dtype):
    options = {**TINY, "sets": ["stroop"], "samples_per_combo": 1, "limit": 32, "batch_size": 16}
    Run(tmp_path / "cpu").extract(**options)
    Run(tmp_path / "gpu").extract(**options, device="cuda", dtype=dtype)
    cpu, gpu = open_store(tmp_path / "cpu")["stroop"], open_store(tmp_path / "gpu")["stroop"]
    tol = 1e-2 if dtype == "float32" else 1e-1
    for block in cpu.attrs["blocks"]:
        a = cpu[block]["max"][:].astype(np.float32)
        b = gpu[block]["max"][:].astype(np.float32)
        np.testing.assert_allclose(b, a, rtol=tol, atol=tol, err_msg=block)

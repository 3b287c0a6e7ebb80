"""A resumable cache of image embeddings in a Zarr group: one array per (image set, model,
preprocessing) key, filled batch by batch, each batch's row count recorded after it is written;
text embeddings stored once per key; and the text tower that encodes them.

Naming (RUN/naming/embeddings.zarr) and the probes (RUN/probes/embeddings.zarr) keep theirs
here; the arrays are plain Zarr v3, readable without chromadissect.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import zarr

from interp.inputs import Images, autocast, default_workers
from interp.progress import bar

log = logging.getLogger(__name__)


def cache_key(spec: dict, model: dict) -> str:
    """Short stable hash of (set spec, model identity): reuse needs both equal."""
    text = json.dumps({"spec": spec, "model": model}, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


@dataclass
class TextTower:
    """`encode(texts)` of a model: tokenizer + `owner.encode_text`, unit-norm float32."""

    owner: torch.nn.Module
    tokenizer: object
    device: torch.device

    @torch.no_grad()
    def encode(self, texts: list[str], dtype: str = "float32") -> torch.Tensor:
        tokens = self.tokenizer(texts)
        if torch.is_tensor(tokens):
            tokens = tokens.to(self.device)
        with autocast(self.device, dtype):
            emb = self.owner.encode_text(tokens)
        return torch.nn.functional.normalize(emb.float().flatten(1), dim=-1)


class EmbeddingCache:
    """Embeddings per (set spec, model): `{set}-{key}/embedding` (images, D) float32 and
    `{set}-{key}/rows`, the images encoded of each chunk (a chunk is encoded as one batch)."""

    def __init__(self, root: Path) -> None:
        self.root = zarr.open_group(str(root), mode="a")

    def stored(self, path: str, compute: Callable[[], np.ndarray],
               dimension_names: tuple[str, str], attributes: dict) -> np.ndarray:
        """The array at `path`, computed and written on first use (text embeddings: a few
        thousand rows, encoded in one go)."""
        if path not in self.root:
            self.root.create_array(path, data=np.asarray(compute(), dtype=np.float32),
                                   dimension_names=dimension_names, attributes=attributes)
        return np.asarray(self.root[path][:])

    def arrays(self, name: str, key: str, n: int, dim: int, chunk: int, spec: dict):
        """The (embedding, rows) arrays of one set, created on first use: `rows[c]` images of
        chunk c are encoded (a chunk is encoded as one batch, from its start)."""
        path = f"{name}-{key}"
        if path not in self.root:
            group = self.root.create_group(path)
            group.attrs.update({"set": name, "spec": json.loads(json.dumps(spec, default=str))})
            group.create_array("embedding", shape=(n, dim), chunks=(chunk, dim), dtype="float32",
                               dimension_names=("image", "feature"))
        group = self.root[path]
        if "rows" not in group:
            group.create_array("rows", shape=(-(-n // chunk),), chunks=(-(-n // chunk),),
                               dtype="int32", fill_value=0, dimension_names=("chunk",))
        return group["embedding"], group["rows"]

    def fill(self, images, n: int, *, key: str, dim: int, spec: dict,
             encode: Callable[[torch.Tensor], torch.Tensor], device: torch.device,
             batch_size: int = 64, workers: int | None = None, desc: str = "") -> zarr.Array:
        """The cached (len(images), D) embeddings, their first n rows encoded (only what was
        not cached yet): `encode` takes a uint8 (B, H, W, 3) batch, as `Images` yields them.

        A chunk encoded only up to n is encoded again, whole, when a larger n needs more of it.
        """
        emb, rows = self.arrays(images.name, key, len(images), dim, batch_size, spec)
        chunk = emb.chunks[0]
        n = min(n, len(images))
        starts = np.arange(0, n, chunk)
        wanted = np.minimum(chunk, n - starts)  # rows of each chunk needed
        todo = [int(c) for c in np.flatnonzero(rows[:len(starts)] < wanted)]
        if not todo:
            return emb
        log.info("encoding %s: %d of %d batches to go", desc or images.name, len(todo),
                 len(starts))
        shown = bar(total=len(todo), desc=desc or images.name, unit="batch")
        batches = [list(range(c * chunk, c * chunk + int(wanted[c]))) for c in todo]
        workers = default_workers(device) if workers is None else workers
        loader = torch.utils.data.DataLoader(Images(images), batch_sampler=batches,
                                             num_workers=workers,
                                             pin_memory=device.type == "cuda")
        for c, (batch, _index) in zip(todo, loader, strict=True):
            emb[c * chunk: c * chunk + len(batch)] = encode(batch).cpu().numpy()
            rows[c] = len(batch)
            shown.update()
        shown.close()
        return emb

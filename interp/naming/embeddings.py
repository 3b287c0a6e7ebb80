"""CLIP embeddings for zero-shot naming: the 11 prompts of a template (text tower, once) and the
images of a stimulus set (image tower, in batches, cached in RUN/naming/embeddings.zarr)."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import torch
import zarr

from interp.errors import ChromaError
from interp.inputs import Images, autocast, batch_to_input, default_workers
from interp.models import LoadedModel
from interp.naming.experiments import prompts
from interp.progress import bar

log = logging.getLogger(__name__)


def require_text_tower(loaded: LoadedModel) -> None:
    """Naming needs CLIP's text tower: refuse custom modules without one."""
    if loaded.clip is None or loaded.tokenizer is None:
        raise ChromaError(f"--model {loaded.model} has no text tower, so it cannot name colours; "
                          "use an open_clip CLIP model (e.g. --model RN50)")


@torch.no_grad()
def text_embeddings(loaded: LoadedModel, template: str, dtype: str = "float32") -> torch.Tensor:
    """(11, D) unit-norm float32 embeddings of the template's prompts, in COLOR_TERMS order."""
    require_text_tower(loaded)
    tokens = loaded.tokenizer(prompts(template)).to(loaded.device)
    with autocast(loaded.device, dtype):
        emb = loaded.clip.encode_text(tokens)
    return torch.nn.functional.normalize(emb.float(), dim=-1)


def embedding_dim(loaded: LoadedModel, dtype: str) -> int:
    """Width of the joint embedding (the visual tower's output_dim, else measured on text)."""
    dim = getattr(loaded.clip.visual, "output_dim", None)
    return int(dim) if dim else int(text_embeddings(loaded, "{}", dtype).shape[-1])


def cache_key(spec: dict, model: dict) -> str:
    """Short stable hash of (set spec, model identity): reuse needs both equal."""
    text = json.dumps({"spec": spec, "model": model}, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


class EmbeddingCache:
    """Image embeddings per (set spec, model), written batch by batch, each batch's row count
    recorded after writing."""

    def __init__(self, root: Path) -> None:
        self.root = zarr.open_group(str(root), mode="a")

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

    def prompts(self, loaded: LoadedModel, template: str, dtype: str) -> torch.Tensor:
        """(11, D) prompt embeddings of a template, from `text/{key}` or encoded and stored."""
        key = cache_key({"template": template}, {**loaded.describe(), "dtype": dtype})
        path = f"text/{key}"
        if path not in self.root:
            emb = text_embeddings(loaded, template, dtype).cpu().numpy()
            self.root.create_array(path, data=emb, dimension_names=("prompt", "feature"),
                                   attributes={"template": template})
        return torch.from_numpy(self.root[path][:])


def _loader(stim_set, loaded: LoadedModel, batches: list[list[int]], workers: int | None):
    if workers is None:
        workers = default_workers(loaded.device)
    return torch.utils.data.DataLoader(Images(stim_set), batch_sampler=batches, num_workers=workers,
                                       pin_memory=loaded.device.type == "cuda")


@torch.no_grad()
def encode_batch(loaded: LoadedModel, images: torch.Tensor, dtype: str) -> torch.Tensor:
    """uint8 (N, H, W, 3) images, as `Images` yields them -> (N, D) unit-norm float32
    embeddings."""
    x = batch_to_input(images, loaded, loaded.device)
    with autocast(loaded.device, dtype):
        emb = loaded.clip.encode_image(x)
    return torch.nn.functional.normalize(emb.float(), dim=-1)


def image_embeddings(loaded: LoadedModel, stim_set, n: int, cache: EmbeddingCache, *,
                     batch_size: int = 64, dtype: str = "float32",
                     workers: int | None = None) -> zarr.Array:
    """The cached (images, D) unit-norm embeddings of the set, its first n images encoded (only
    what was not cached yet); read it in blocks, as it can be larger than memory.

    The cache spans the whole set (built without --limit), one batch per chunk; a chunk encoded
    only up to n is encoded again, whole, when a larger n needs more of it.
    """
    require_text_tower(loaded)
    spec = {k: v for k, v in stim_set.spec().items() if k not in ("limit", "length")}
    key = cache_key(spec, {**loaded.describe(), "dtype": dtype})
    dim = embedding_dim(loaded, dtype)
    emb, rows = cache.arrays(stim_set.name, key, len(stim_set), dim, batch_size, spec)
    chunk = emb.chunks[0]
    starts = np.arange(0, min(n, len(stim_set)), chunk)
    wanted = np.minimum(chunk, min(n, len(stim_set)) - starts)  # rows of each chunk needed
    todo = [int(c) for c in np.flatnonzero(rows[:len(starts)] < wanted)]
    if todo:
        log.info("encoding %s: %d of %d batches to go", stim_set.name, len(todo), len(starts))
        shown = bar(total=len(todo), desc=f"naming {stim_set.name}", unit="batch")
        batches = [list(range(c * chunk, c * chunk + int(wanted[c]))) for c in todo]
        for c, (images, _index) in zip(todo, _loader(stim_set, loaded, batches, workers),
                                       strict=True):
            batch = encode_batch(loaded, images, dtype).cpu().numpy()
            emb[c * chunk: c * chunk + len(images)] = batch
            rows[c] = len(images)
            shown.update()
        shown.close()
    return emb

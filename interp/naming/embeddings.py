"""CLIP embeddings for zero-shot naming: the 11 prompts of a template (text tower, once) and the
images of a stimulus set (image tower, in batches, cached in RUN/naming/embeddings.zarr)."""

from __future__ import annotations

import logging

import torch
import zarr

from interp import embeddings
from interp.embeddings import TextTower, cache_key
from interp.errors import ChromaError
from interp.inputs import autocast, batch_to_input
from interp.models import LoadedModel
from interp.naming.experiments import prompts

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
    return TextTower(loaded.clip, loaded.tokenizer, loaded.device).encode(prompts(template), dtype)


def embedding_dim(loaded: LoadedModel, dtype: str) -> int:
    """Width of the joint embedding (the visual tower's output_dim, else measured on text)."""
    dim = getattr(loaded.clip.visual, "output_dim", None)
    return int(dim) if dim else int(text_embeddings(loaded, "{}", dtype).shape[-1])


class EmbeddingCache(embeddings.EmbeddingCache):
    """The naming cache: image embeddings per (set spec, model) and prompt embeddings."""

    def prompts(self, loaded: LoadedModel, template: str, dtype: str) -> torch.Tensor:
        """(11, D) prompt embeddings of a template, from `text/{key}` or encoded and stored."""
        key = cache_key({"template": template}, {**loaded.describe(), "dtype": dtype})
        emb = self.stored(f"text/{key}", lambda: text_embeddings(loaded, template, dtype).cpu(),
                          ("prompt", "feature"), {"template": template})
        return torch.from_numpy(emb)


@torch.no_grad()
def encode_batch(loaded: LoadedModel, images: torch.Tensor, dtype: str) -> torch.Tensor:
    """uint8 (N, H, W, 3) images, as `Images` yields them -> (N, D) unit-norm float32
    embeddings."""
    return encode_input(loaded, batch_to_input(images, loaded, loaded.device), dtype)


@torch.no_grad()
def encode_input(loaded: LoadedModel, x: torch.Tensor, dtype: str) -> torch.Tensor:
    """Normalised (N, 3, H, W) model inputs -> (N, D) unit-norm float32 image embeddings."""
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
    return cache.fill(stim_set, n, key=key, dim=dim, spec=spec, device=loaded.device,
                      encode=lambda images: encode_batch(loaded, images, dtype),
                      batch_size=batch_size, workers=workers, desc=f"naming {stim_set.name}")

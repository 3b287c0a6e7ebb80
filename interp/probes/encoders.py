"""The two image encoders the probes compare: CLIP's image tower (the run's model) and a
reference image encoder (default DINOv2 ViT-S/14 through timm, at 224 px with its own ImageNet
mean/std), each turning uint8 images into unit-norm embeddings, cached per corpus.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from interp import checkpoints
from interp.embeddings import EmbeddingCache, cache_key
from interp.errors import ChromaError, UsageError
from interp.inputs import autocast, batch_to_input
from interp.models import LoadedModel, load_factory, preprocessing, resolve_device

log = logging.getLogger(__name__)

#: Short names of timm's DINOv2 models; any other timm model name works too.
REFERENCES = {"dinov2-vits14": "vit_small_patch14_dinov2",
              "dinov2-vitb14": "vit_base_patch14_dinov2",
              "dinov2-vitl14": "vit_large_patch14_dinov2",
              "dinov2-vitg14": "vit_giant_patch14_dinov2"}
DEFAULT_REFERENCE = "dinov2-vits14"
#: Input side of a timm reference (DINOv2's default config is 518 px; the paper's CLIP is 224).
REFERENCE_SIZE = 224
RANDOM_INIT = "none"
REFERENCE_REMEDIES = ("use --reference-weights none (random init, the offline control) or "
                      "--reference-weights PATH (a local checkpoint), or fetch the weights once "
                      "while online")


@dataclass
class ImageEncoder:
    """uint8 images -> unit-norm embeddings; `visual`, `image_size`, `mean`, `std` are what
    `interp.inputs` needs to prepare its inputs."""

    role: str                  # "clip" or "reference"
    name: str
    weights: str               # tag, checkpoint path, or "none" (random init)
    visual: nn.Module
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    device: torch.device
    forward: Callable[[torch.Tensor], torch.Tensor]
    random_init: bool = False

    def describe(self) -> dict:
        """JSON-able identity (the cache key and run.json's record); a loud `random init`."""
        return {"role": self.role, "model": self.name, "weights": self.weights,
                "random_init": self.random_init, "image_size": self.image_size,
                "mean": list(self.mean), "std": list(self.std),
                **({"WARNING": "random init: untrained weights"} if self.random_init else {})}

    @torch.no_grad()
    def encode(self, images: torch.Tensor, dtype: str = "float32") -> torch.Tensor:
        """uint8 (N, H, W, 3) -> (N, D) unit-norm float32."""
        x = batch_to_input(images, self, self.device)
        with autocast(self.device, dtype):
            out = self.forward(x)
        return torch.nn.functional.normalize(out.float().flatten(1), dim=-1)

    def embed(self, corpus, cache: EmbeddingCache, *, batch_size: int = 64,
              dtype: str = "float32", workers: int | None = None):
        """The cached (N, D) embeddings of every corpus image (encoded where not cached yet)."""
        return self.embed_images(corpus.images(self.image_size), cache, batch_size=batch_size,
                                 dtype=dtype, workers=workers)

    def embed_images(self, images, cache: EmbeddingCache, *, batch_size: int = 64,
                     dtype: str = "float32", workers: int | None = None, desc: str = ""):
        """The cached embeddings of an image set at this encoder's size (`name`, `render`,
        `spec`, as `CorpusImages` or TCAC's transformed images), keyed by its spec and this
        encoder's identity."""
        spec = images.spec()
        key = cache_key(spec, {**self.describe(), "dtype": dtype})
        return cache.fill(images, len(images), key=key, dim=self._dim(images, dtype), spec=spec,
                          device=self.device, encode=lambda batch: self.encode(batch, dtype),
                          batch_size=batch_size, workers=workers,
                          desc=desc or f"{self.role} embeddings")

    def _dim(self, images, dtype: str) -> int:
        probe = torch.from_numpy(images.render(0)).unsqueeze(0)
        return int(self.encode(probe, dtype).shape[1])


def clip_encoder(loaded: LoadedModel) -> ImageEncoder:
    """The image side of the run's model: `encode_image` where it has one, else its output,
    flattened."""
    owner = loaded.clip if loaded.clip is not None else loaded.visual
    forward = getattr(owner, "encode_image", None) or loaded.visual
    return ImageEncoder("clip", loaded.model, loaded.pretrained, loaded.visual,
                        loaded.image_size, loaded.mean, loaded.std, loaded.device, forward,
                        random_init=loaded.pretrained == "none" and ":" not in loaded.model)


def load_reference(name: str = DEFAULT_REFERENCE, weights: str | None = None, *, seed: int = 0,
                   device: str | torch.device = "cpu") -> ImageEncoder:
    """The reference image encoder: a timm model (DINOv2 by its short name, or any timm name)
    with weights TAG (default: timm's), PATH or none; or `package.module:factory`."""
    dev = resolve_device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if ":" in name:
            encoder = _factory_reference(name, weights)
        else:
            encoder = _timm_reference(name, weights)
    encoder.visual = encoder.visual.to(dev).eval()
    encoder.device = dev
    if encoder.random_init:
        log.warning("reference %s: random init (untrained weights), a control only", name)
    return encoder


def _factory_reference(spec: str, weights: str | None) -> ImageEncoder:
    net = load_factory(spec, flag="--reference")
    size, mean, std = preprocessing(net, net)
    label = "factory's own"
    if weights and weights.lower() != RANDOM_INIT:
        if not checkpoints.looks_like_path(weights):
            raise UsageError(f"--reference-weights {weights}: a factory takes a checkpoint PATH "
                             "or none (its own weights)")
        label = checkpoints.load_into(net, weights, spec)["path"]
    forward = getattr(net, "encode_image", None) or net
    return ImageEncoder("reference", spec, label, net, size, mean, std, torch.device("cpu"),
                        forward)


def check_reference(name: str) -> str:
    """The timm architecture a reference name stands for (factories are checked on import)."""
    import timm

    arch = REFERENCES.get(name, name)
    if ":" not in name and not timm.is_model(arch):
        raise UsageError(f"--reference {name}: not a timm model; use one of "
                         f"{', '.join(REFERENCES)}, a timm model name, or package.module:factory")
    return arch


def _timm_reference(name: str, weights: str | None) -> ImageEncoder:
    import timm

    arch = check_reference(name)
    kwargs = {"num_classes": 0}
    if "dinov2" in arch:
        kwargs["img_size"] = REFERENCE_SIZE
    weights = weights or _default_tag(arch)
    if weights.lower() == RANDOM_INIT:
        net, label = timm.create_model(arch, pretrained=False, **kwargs), RANDOM_INIT
    else:
        path = _reference_file(arch, weights)
        try:
            net = timm.create_model(arch, pretrained=True,
                                    pretrained_cfg_overlay={"file": str(path)}, **kwargs)
        except Exception as err:  # noqa: BLE001 - timm and torch raise many kinds
            raise ChromaError(f"--reference-weights {weights}: cannot load them into {arch} "
                              f"({str(err).splitlines()[0][:160]}); check they belong to "
                              f"--reference {name}") from None
        label = str(path) if checkpoints.looks_like_path(weights) else weights
    cfg = net.pretrained_cfg
    return ImageEncoder("reference", name, label, net, REFERENCE_SIZE if "dinov2" in arch
                        else int(cfg["input_size"][-1]), tuple(cfg["mean"]), tuple(cfg["std"]),
                        torch.device("cpu"), net, random_init=label == RANDOM_INIT)


def _default_tag(arch: str) -> str:
    import timm

    tags = [t.partition(".")[2] for t in timm.list_pretrained(arch)]
    return tags[0] if tags and tags[0] else RANDOM_INIT


def _reference_file(arch: str, weights: str):
    """The weights file of a tag (from the hub cache, else downloaded while the hub answers
    at once) or a path; fails in seconds offline."""
    from pathlib import Path

    if checkpoints.looks_like_path(weights) or checkpoints.spelled_like_path(weights):
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ChromaError(f"--reference-weights {weights}: no such file; give a checkpoint "
                              "path, a timm tag, or none")
        return path
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(f"{arch}.{weights}")
    if cfg is None or not cfg.hf_hub_id:
        raise UsageError(f"--reference-weights {weights}: not a weights tag of {arch}; "
                         f"{REFERENCE_REMEDIES}")
    cache = str(checkpoints.hf_cache_dir())
    for filename in ("model.safetensors", "pytorch_model.bin"):
        hit = try_to_load_from_cache(cfg.hf_hub_id, filename, cache_dir=cache)
        if isinstance(hit, str):
            return Path(hit)
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    if offline or not checkpoints.hub_reachable():
        why = "HF_HUB_OFFLINE is set" if offline else f"{checkpoints.hub_url()} is unreachable"
        raise ChromaError(f"reference weights {arch}.{weights} are not cached ({cache}) and "
                          f"{why}; {REFERENCE_REMEDIES}")
    try:
        return Path(hf_hub_download(cfg.hf_hub_id, "model.safetensors", cache_dir=cache))
    except Exception as err:  # noqa: BLE001 - the hub client raises many kinds
        raise ChromaError(f"download of {arch}.{weights} failed ({str(err)[:160]}); "
                          f"{REFERENCE_REMEDIES}") from None

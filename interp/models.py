"""Load the network to dissect: open_clip ResNets, torchvision-style ResNets or any nn.Module.

`load_model` returns a `LoadedModel`: the visual tower in eval mode, its hook points (`blocks`,
dotted module paths relative to the visual tower), its input size and normalisation, and for CLIP
models the full model and tokenizer (docs/architecture.md, "Models").
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from interp import checkpoints
from interp.errors import ChromaError, UsageError
from interp.hooks import trace

log = logging.getLogger(__name__)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CLIP_IMAGE_SIZE = 224
BLOCK_CLASS_NAMES = ("Bottleneck", "BasicBlock")
MAX_LISTED_MODULES = 40
#: The model every command uses unless told otherwise (run.json's `model_settings` keys).
DEFAULT_MODEL = {"model": "RN50", "pretrained": "openai", "seed": 0, "layers": None}


@dataclass
class LoadedModel:
    """A model ready for hooking: visual tower, hook points, preprocessing and identity."""

    model: str
    pretrained: str
    seed: int
    visual: nn.Module
    blocks: dict[str, nn.Module]
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    clip: nn.Module | None = None
    tokenizer: Any = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    config_name: str | None = None
    checkpoint: dict | None = None
    map_shapes: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    def describe(self) -> dict:
        """JSON-able identity of the model: what was loaded, hook points and their sizes."""
        return {
            "model": self.model,
            "pretrained": self.pretrained,
            "seed": self.seed,
            "layers": list(self.blocks),
            "open_clip_config": self.config_name,
            "checkpoint": self.checkpoint,
            "image_size": self.image_size,
            "mean": list(self.mean),
            "std": list(self.std),
            "n_units": {name: shape[0] for name, shape in self.map_shapes.items()},
            "map_shapes": {name: list(shape[1:]) for name, shape in self.map_shapes.items()},
            "total_units": sum(shape[0] for shape in self.map_shapes.values()),
        }


def unit_counts(loaded: LoadedModel) -> dict[str, int]:
    """Number of units (channels) of each hooked block, in block order."""
    return {name: shape[0] for name, shape in loaded.map_shapes.items()}


def resolve_device(text: str | torch.device) -> torch.device:
    """Parse `cpu`, `cuda` or `cuda:K` and check the device exists here."""
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise UsageError(f"--device {text}: not a device; use cpu, cuda or cuda:K") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ChromaError(f"--device {text}: no CUDA GPU is visible to torch here; "
                              "use --device cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ChromaError(f"--device {text}: only {count} CUDA GPU(s) here "
                              f"(cuda:0 … cuda:{count - 1})")
    elif device.type != "cpu" and device.type != "mps":
        raise UsageError(f"--device {text}: unsupported device type; use cpu, cuda or cuda:K")
    return device


def tiny_clip(seed: int | None = None) -> nn.Module:
    """A small open_clip CLIP (ModifiedResNet 1-1-1-1, width 8, 64 px) for tests; seeded init.

    seed None takes torch's current seed, so `load_model("interp.models:tiny_clip", seed=N)`
    gives the weights of seed N.
    """
    import open_clip
    from open_clip.model import set_model_preprocess_cfg

    vision_cfg = {"layers": (1, 1, 1, 1), "width": 8, "image_size": 64, "head_width": 16}
    text_cfg = {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(torch.initial_seed() if seed is None else seed)
        model = open_clip.CLIP(embed_dim=32, vision_cfg=vision_cfg, text_cfg=text_cfg,
                               quick_gelu=True)
    set_model_preprocess_cfg(model, {"size": 64, "mean": CLIP_MEAN, "std": CLIP_STD,
                                     "interpolation": "bicubic", "resize_mode": "shortest"})
    return model.eval()


def is_clip(module: nn.Module) -> bool:
    """True for an open_clip-style CLIP model (visual tower plus text tower)."""
    return all(hasattr(module, a) for a in ("visual", "encode_image", "encode_text"))


def find_blocks(visual: nn.Module) -> dict[str, nn.Module]:
    """Every residual block (Bottleneck, BasicBlock) of the tower by dotted path, outermost only."""
    blocks: dict[str, nn.Module] = {}
    for name, module in visual.named_modules():
        inside = any(name.startswith(f"{b}.") for b in blocks)
        if name and not inside and type(module).__name__ in BLOCK_CLASS_NAMES:
            blocks[name] = module
    return blocks


def select_layers(visual: nn.Module, layers: list[str] | None, found: dict[str, nn.Module],
                  model_name: str) -> dict[str, nn.Module]:
    """The hook points: `layers` if given (each must name a module), else the discovered blocks."""
    if not layers:
        if not found:
            raise UsageError(f"no residual blocks found in {model_name}; name the hook points "
                             "with --layers a,b,... (dotted module paths of the model)")
        return found
    modules = dict(visual.named_modules())
    unknown = [name for name in layers if name not in modules or not name]
    if unknown:
        raise UsageError(f"unknown layer(s) {', '.join(map(repr, unknown))} in {model_name}; "
                         f"{_valid_layers_hint(modules, found)}")
    return {name: modules[name] for name in layers}


def _valid_layers_hint(modules: dict[str, nn.Module], found: dict[str, nn.Module]) -> str:
    names = [n for n in modules if n]
    if len(names) <= MAX_LISTED_MODULES:
        return f"valid: {', '.join(names)}"
    listed = ", ".join(found) if found else ", ".join(names[:MAX_LISTED_MODULES]) + ", …"
    return (f"blocks: {listed}; any dotted module path of the visual tower also works "
            f"(e.g. {names[-1]})")


@torch.no_grad()
def probe_shapes(visual: nn.Module, blocks: dict[str, nn.Module], image_size: int,
                 device: torch.device) -> dict[str, tuple[int, int, int]]:
    """Output (C, H, W) of each hook point, from one forward pass on a zero image.

    The pass runs on meta tensors (shapes only, no arithmetic) where the module allows it,
    else for real on `device`.
    """
    try:
        shapes = _record_shapes(visual, blocks, image_size, torch.device("meta"))
    except Exception:  # noqa: BLE001 - some modules cannot run on meta tensors
        shapes = _record_shapes(visual, blocks, image_size, device)
    for name in blocks:
        shape = shapes.get(name)
        if shape is None or len(shape) != 4:
            raise UsageError(f"layer {name!r} does not output an (N, C, H, W) map "
                             f"(got {shape or 'nothing'}); choose other --layers")
    return {name: tuple(shapes[name][1:]) for name in blocks}


def _record_shapes(visual: nn.Module, blocks: dict[str, nn.Module], image_size: int,
                   device: torch.device) -> dict[str, tuple[int, ...]]:
    """Output shape of each block in one forward of a zero image on `device`."""
    shapes: dict[str, tuple[int, ...]] = {}
    dtype = next(visual.parameters(), torch.empty(0)).dtype
    image = torch.zeros(1, 3, image_size, image_size, device=device, dtype=dtype)
    with trace(blocks, lambda name, x: shapes.__setitem__(name, tuple(x.shape))):
        if device.type == "meta":
            tensors = dict(visual.named_parameters())
            tensors.update(visual.named_buffers())
            meta = {k: torch.empty_like(v, device="meta") for k, v in tensors.items()}
            torch.func.functional_call(visual, meta, (image,), strict=False)
        else:
            visual(image)
    return shapes


def load_factory(spec: str, flag: str = "--model") -> nn.Module:
    """Import `package.module:factory` and call it with no arguments (`flag` names the option
    in errors)."""
    module_name, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise UsageError(f"{flag} {spec}: cannot import {attr!r} from {module_name!r} ({err}); "
                         "use package.module:factory") from None
    try:
        module = factory()
    except Exception as err:  # noqa: BLE001 - the user's code may raise anything
        raise ChromaError(f"{flag} {spec}: the factory raised {type(err).__name__}: {err}; "
                          "it must build the module when called with no arguments") from err
    if not isinstance(module, nn.Module):
        raise UsageError(f"{flag} {spec}: the factory returned {type(module).__name__}, "
                         "not a torch nn.Module")
    return module


def load_model(model: str = DEFAULT_MODEL["model"],
               pretrained: str | os.PathLike | None = DEFAULT_MODEL["pretrained"], *,
               seed: int = DEFAULT_MODEL["seed"], layers: list[str] | str | None = None,
               device: str | torch.device = "cpu") -> LoadedModel:
    """Build the model with its weights, find its hook points, put it in eval mode on `device`."""
    dev = resolve_device(device)
    pretrained = "none" if pretrained is None else os.fspath(pretrained)
    pretrained = "none" if pretrained.lower() == "none" else pretrained
    if isinstance(layers, str):
        layers = [name.strip() for name in layers.split(",") if name.strip()]
    if checkpoints.spelled_like_path(pretrained):
        checkpoints.existing_file(pretrained)  # a typo in a path fails before any import or build
    if ":" not in model:
        model = checkpoints.canonical_model(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if ":" in model:
            net, config_name = load_factory(model), None
            pretrained, identity = _factory_weights(net, model, pretrained)
        else:
            net, config_name, identity = checkpoints.build_open_clip(model, pretrained)
    net = net.to(dev).eval()
    loaded = _wrap(net, model, pretrained, seed, layers, dev)
    loaded.config_name = config_name
    loaded.checkpoint = identity
    if identity:  # record the absolute path, or the tag as open_clip spells it
        loaded.pretrained = identity.get("path") or identity["tag"]
    log.info("loaded %s (%s) with %d hook points, %d units on %s", model, loaded.pretrained,
             len(loaded.blocks), sum(unit_counts(loaded).values()), dev)
    return loaded


def _factory_weights(net: nn.Module, model: str, pretrained: str) -> tuple[str, dict | None]:
    """Load a checkpoint file into a factory's module; a tag (e.g. the default openai) keeps
    the factory's own weights, since tags only name open_clip weights."""
    if pretrained.lower() == "none":
        return "none", None
    if checkpoints.looks_like_path(pretrained):
        return pretrained, checkpoints.load_into(net, pretrained, model)
    log.warning("--pretrained %s names open_clip weights; %s keeps the weights its factory "
                "gives (use --pretrained PATH to load a checkpoint)", pretrained, model)
    return "none", None


def _wrap(net: nn.Module, model: str, pretrained: str, seed: int, layers: list[str] | None,
          device: torch.device) -> LoadedModel:
    clip = net if is_clip(net) else None
    visual = net.visual if clip is not None else net
    tokenizer = None
    if clip is not None:
        import open_clip
        tokenizer = open_clip.SimpleTokenizer(context_length=getattr(clip, "context_length", 77))
    image_size, mean, std = preprocessing(net, visual)
    found = find_blocks(visual)
    blocks = select_layers(visual, layers, found, model)
    loaded = LoadedModel(model=model, pretrained=pretrained, seed=seed, visual=visual,
                         blocks=blocks, image_size=image_size, mean=mean, std=std, clip=clip,
                         tokenizer=tokenizer, device=device)
    loaded.map_shapes = probe_shapes(visual, blocks, image_size, device)
    return loaded


def preprocessing(net: nn.Module, visual: nn.Module) -> tuple[int, tuple, tuple]:
    """Input size, mean and std: the module's own attributes, open_clip's preprocess cfg of the
    visual tower, or CLIP's defaults (224 px, CLIP mean/std)."""
    cfg = getattr(visual, "preprocess_cfg", None) or {}
    size = _first_attr((net, visual), ("image_size",), cfg.get("size", CLIP_IMAGE_SIZE))
    mean = _first_attr((net, visual), ("mean", "image_mean"), cfg.get("mean", CLIP_MEAN))
    std = _first_attr((net, visual), ("std", "image_std"), cfg.get("std", CLIP_STD))
    if isinstance(size, (tuple, list)):
        if size[0] != size[-1]:
            raise ChromaError(f"non-square input size {tuple(size)} is not supported")
        size = size[0]
    return int(size), tuple(float(v) for v in mean), tuple(float(v) for v in std)


def _first_attr(modules: tuple[nn.Module, ...], names: tuple[str, ...], default: Any) -> Any:
    for module in modules:
        for name in names:
            value = getattr(module, name, None)
            if value is not None and not callable(value):
                return value
    return default

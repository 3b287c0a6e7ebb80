"""Weights for `load_model`: open_clip configs and tags, the local cache, checkpoint files.

Offline with no cached weights we fail in seconds (a short probe of the hub) instead of waiting
through the hub client's retries; a checkpoint that does not fit says how many keys are off.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import urllib.request
import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn

from interp.errors import ChromaError, UsageError

log = logging.getLogger(__name__)

HUB_URL = "https://huggingface.co"
PROBE_TIMEOUT_S = 3.0
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")
REMEDIES = ("use --pretrained none (untrained control) or --pretrained PATH (a local checkpoint), "
            "or fetch the weights once while online")


def supported_models() -> list[str]:
    """open_clip model names with a ModifiedResNet visual tower (RN50, RN101, RN50x4, ...)."""
    import open_clip

    return [n for n in open_clip.list_models() if n.startswith("RN")]


def canonical_model(model: str) -> str:
    """The open_clip spelling of a ResNet name (`rn50x4` -> `RN50x4`); unknown names unchanged."""
    by_lower = {name.lower(): name for name in supported_models()}
    return by_lower.get(model.lower(), model)


def pretrained_kind(model: str, pretrained: str) -> str:
    """'none', 'tag' or 'path' for the --pretrained value of an open_clip model."""
    import open_clip

    if pretrained.lower() == "none":
        return "none"
    if open_clip.is_pretrained_cfg(model, pretrained):
        return "tag"
    if looks_like_path(pretrained):
        return "path"
    tags = open_clip.list_pretrained_tags_by_model(model) or ["(none known)"]
    raise UsageError(f"--pretrained {pretrained}: not a known open_clip tag for {model} "
                     f"(known: {', '.join(tags)}) nor an existing file; "
                     "use one of those, none, or a checkpoint path")


def looks_like_path(text: str) -> bool:
    """True for an existing file or anything spelled like a path or a checkpoint file name."""
    return Path(text).expanduser().exists() or spelled_like_path(text)


def spelled_like_path(text: str) -> bool:
    """True for text no open_clip tag can be: with a folder separator or a checkpoint suffix."""
    return os.sep in text or "/" in text or Path(text).suffix in CHECKPOINT_SUFFIXES


def config_name(model: str, pretrained: str) -> str:
    """The open_clip config to build: `RN50` + OpenAI weights (QuickGELU) -> `RN50-quickgelu`.

    A tag decides by its own quick_gelu flag; `none` and checkpoint paths get the QuickGELU
    variant, since every published CLIP ResNet (OpenAI's, open_clip's) was trained with it and
    the untrained control should match the trained architecture.
    """
    import open_clip

    if model not in supported_models():
        raise UsageError(f"--model {model}: not an open_clip ResNet; supported: "
                         f"{', '.join(supported_models())}, or package.module:factory")
    if model.endswith("-quickgelu"):
        return model
    quick = f"{model}-quickgelu"
    if pretrained_kind(model, pretrained) == "tag":
        wants_quick = open_clip.get_pretrained_cfg(model, pretrained).get("quick_gelu", False)
    else:
        wants_quick = True
    return quick if wants_quick and quick in open_clip.list_models() else model


def build_open_clip(model: str, pretrained: str) -> tuple[nn.Module, str, dict | None]:
    """The open_clip CLIP for (model, pretrained), built then loaded: (net, config name, identity).

    Call under a seeded RNG for `none` (the untrained control).
    """
    import open_clip
    from open_clip.model import set_model_preprocess_cfg

    name = config_name(model, pretrained)
    kind = pretrained_kind(model, pretrained)
    path = cached_or_fetch(model, pretrained) if kind == "tag" else None
    if kind == "path":
        existing_file(pretrained)  # before minutes of building a big model
    log.info("building open_clip %s on the CPU", name)
    with _quiet_open_clip_logs():
        net = open_clip.create_model(name, pretrained=None, device="cpu")
    identity = None
    if kind == "tag":
        load_into(net, str(path), model)
        cfg = open_clip.get_pretrained_cfg(model, pretrained)
        set_model_preprocess_cfg(net, {**net.visual.preprocess_cfg,
                                       "mean": cfg.get("mean", net.visual.image_mean),
                                       "std": cfg.get("std", net.visual.image_std)})
        identity = {"tag": pretrained.lower().replace("-", "_"), **file_identity(path)}
        del identity["path"]  # the cache location differs between machines; the bytes do not
    elif kind == "path":
        identity = load_into(net, pretrained, model)
    else:
        unzero_residual_branches(net.visual)
    return net, name, identity


def unzero_residual_branches(visual: nn.Module) -> None:
    """Give each bottleneck's last BatchNorm unit gain (PyTorch's default) in the untrained control.

    open_clip zero-initialises bn3.weight, a training trick that makes each residual branch output
    zero: untrained, every block after the first of a stage would copy its input, and its units
    would duplicate the previous block's. The control should be a random network in every block.
    """
    for name, param in visual.named_parameters():
        if name.endswith("bn3.weight"):
            nn.init.ones_(param)


@contextlib.contextmanager
def _quiet_open_clip_logs():
    """Hide open_clip's build chatter (it logs on the root logger) and its "initialized randomly"
    warning: we load the weights ourselves and log what we did."""
    def keep(record: logging.LogRecord) -> bool:
        chatter = record.name == "root" and record.levelno < logging.WARNING
        return not chatter and "Model initialized randomly" not in record.getMessage()

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


# ---- the cache and the hub ----------------------------------------------------------------

def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment now (not at import time)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(xdg) / "huggingface" / "hub"


def url_cache_dirs() -> list[Path]:
    """Where weights downloaded by URL (OpenAI's .pt files) may be: open_clip's default and ours."""
    return [Path(os.path.expanduser("~/.cache/clip")), hf_cache_dir()]


def cached_weights(model: str, tag: str) -> Path | None:
    """The cached weights file of an open_clip tag, or None; never touches the network."""
    import open_clip
    from huggingface_hub import try_to_load_from_cache

    cfg = open_clip.get_pretrained_cfg(model, tag)
    if cfg.get("file"):
        return Path(cfg["file"])
    hub = cfg.get("hf_hub", "")
    if hub:
        repo, filename = os.path.split(hub)
        names = [filename] if filename else ["open_clip_model.safetensors",
                                             "open_clip_pytorch_model.bin"]
        for name in names:
            hit = try_to_load_from_cache(repo, name, cache_dir=str(hf_cache_dir()))
            if isinstance(hit, str):
                return Path(hit)
    url = cfg.get("url", "")
    if url:
        for folder in url_cache_dirs():
            candidate = folder / os.path.basename(url)
            if candidate.is_file():
                return candidate
    return None


def hub_url() -> str:
    """The hub the client would use (HF_ENDPOINT for mirrors)."""
    return os.environ.get("HF_ENDPOINT") or HUB_URL


def hub_reachable(url: str | None = None, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """A short probe of the hub (a 2xx/3xx answer), bounded in time even if name resolution
    hangs; an error status counts as unreachable (sandboxes answer 404 for any host)."""
    result: list[bool] = []

    def probe() -> None:
        try:
            with urllib.request.urlopen(url or hub_url(), timeout=timeout):
                result.append(True)
        except Exception:  # noqa: BLE001 - any failure means "not reachable"
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(result and result[0])


def cached_or_fetch(model: str, tag: str) -> Path:
    """The weights file of a tag: from the cache, else downloaded if the hub answers at once."""
    import open_clip

    path = cached_weights(model, tag)
    if path is not None:
        log.info("weights %s/%s from the cache: %s", model, tag, path)
        return path
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    if offline or not hub_reachable():
        why = "HF_HUB_OFFLINE is set" if offline else f"{hub_url()} is unreachable"
        raise ChromaError(f"weights {model}/{tag} are not cached ({hf_cache_dir()}) and {why}; "
                          f"{REMEDIES}")
    log.info("downloading weights %s/%s (once; cached in %s)", model, tag, hf_cache_dir())
    try:
        target = open_clip.download_pretrained(open_clip.get_pretrained_cfg(model, tag),
                                               cache_dir=str(hf_cache_dir()))
    except Exception as err:  # noqa: BLE001 - the hub client raises many kinds
        raise ChromaError(f"download of {model}/{tag} failed ({_first_line(err)}); "
                          f"{REMEDIES}") from None
    return Path(target)


# ---- checkpoint files ---------------------------------------------------------------------

def file_identity(path: Path) -> dict:
    """Absolute path, size and sha256 of the first MiB: identifies a checkpoint cheaply."""
    with open(path, "rb") as f:
        head = f.read(1 << 20)
    return {"path": str(path.resolve()), "size": path.stat().st_size,
            "sha256_first_mib": hashlib.sha256(head).hexdigest()}


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a file: plain, `{"state_dict": ...}`, DDP `module.` keys, TorchScript."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        state = load_file(str(path), device="cpu")
    else:
        state = _torch_load(path)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state:
        raise ChromaError(f"--pretrained {path}: no state dict in the file "
                          f"(found {type(state).__name__}); save model.state_dict()")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    for key in ("input_resolution", "context_length", "vocab_size"):
        state.pop(key, None)
    return state


def _torch_load(path: Path):
    """torch.load with weights_only; TorchScript archives (OpenAI's .pt) through torch.jit."""
    try:
        if _is_torchscript(path):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                return torch.jit.load(str(path), map_location="cpu").state_dict()
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - unpickling raises many kinds
        raise ChromaError(f"--pretrained {path}: cannot read it as a torch checkpoint "
                          f"({_first_line(err)})") from None


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("constants.pkl") for name in archive.namelist())


def existing_file(pretrained: str) -> Path:
    """The checkpoint path, or a ChromaError naming it when there is no such file."""
    path = Path(pretrained).expanduser()
    if not path.is_file():
        raise ChromaError(f"--pretrained {pretrained}: no such file; give an existing "
                          "checkpoint path, an open_clip tag, or none")
    return path


def load_into(net: nn.Module, pretrained: str, model: str) -> dict:
    """Load a checkpoint file into `net` strictly; a misfit is a ChromaError with the key counts."""
    path = existing_file(pretrained)
    state = _adapt(net, read_state_dict(path))
    _check_fit(net, state, path, model)
    net.load_state_dict(state, strict=True)
    log.info("loaded weights from %s", path)
    return file_identity(path)


def _adapt(net: nn.Module, state: dict) -> dict:
    """Drop non-persistent buffers (TorchScript saves them); open_clip's own conversions
    (third-party layouts, logit_scale shape) for CLIP models."""
    transient = set(dict(net.named_buffers())) - set(net.state_dict())
    state = {k: v for k, v in state.items() if k not in transient}
    if hasattr(net, "logit_scale") and hasattr(net, "visual"):
        from open_clip.convert import convert_state_dict
        state = convert_state_dict(net, state)
        scale = state.get("logit_scale")
        if scale is not None and scale.ndim != net.logit_scale.ndim:
            state["logit_scale"] = scale.reshape(net.logit_scale.shape)
    return state


def _check_fit(net: nn.Module, state: dict, path: Path, model: str) -> None:
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected
             if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        raise ChromaError(
            f"--pretrained {path} does not fit {model}: {len(missing)} missing keys "
            f"{_few(missing)}, {len(unexpected)} unexpected keys {_few(unexpected)}, "
            f"{len(wrong)} of wrong shape {_few(wrong)}; check --model matches the checkpoint")


def _few(keys: list[str], n: int = 3) -> str:
    if not keys:
        return "()"
    more = f", … +{len(keys) - n}" if len(keys) > n else ""
    return f"({', '.join(keys[:n])}{more})"


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__

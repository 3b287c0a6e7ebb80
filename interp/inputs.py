"""Model inputs, prepared in one place: uint8 images -> normalised float tensors in the memory
format and precision the model runs in.

Extraction, `reduce_batch`, CSI, naming and attribution all take their inputs from here, so the
same image gives the same tensor, bit for bit, whichever of them runs it.
"""

from __future__ import annotations

import functools
import logging
import os
import weakref
from collections.abc import Sequence
from contextlib import nullcontext

import numpy as np
import torch

from interp.errors import UsageError

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
BASELINES = ("black", "mean")

# models decided on: model -> memory format it runs in (a model stays the same kind of model)
_FORMATS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# towers known to run channels-last (no trial forward): (package, class name)
CHANNELS_LAST_TOWERS = {("open_clip", "ModifiedResNet"), ("torchvision", "ResNet")}


# --- precision and memory format --------------------------------------------------------------

def autocast(device: torch.device, dtype: str):
    """Mixed precision for bfloat16/float16; plain float32 otherwise."""
    if DTYPES[dtype] == torch.float32:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=DTYPES[dtype])


def uses_channels_last(device: torch.device) -> bool:
    """Channels-last where it is the faster form: CUDA and CPU (oneDNN); bench/extract.py checks."""
    return device.type in ("cuda", "cpu")


def prepare(loaded, device: torch.device, compile: bool = False):
    """The callable to run: channels-last where faster and the model allows it (see
    `model_format`), compiled if asked (hooks attached first)."""
    visual = loaded.visual
    if model_format(loaded, device) == torch.channels_last:
        convert_4d(visual, torch.channels_last)  # again: a caller may have changed the format
    return torch.compile(visual) if compile else visual


def model_format(loaded, device: torch.device) -> torch.memory_format:
    """The memory format the model and its inputs use on `device`, decided once per model.

    Channels-last where faster (`uses_channels_last`) and the model runs in it: on first use its
    4-D weights are converted in place and, unless it is a known ResNet tower, a blank batch is
    tried; a model that fails then (e.g. a `.view()` of its input) runs NCHW-contiguous.
    """
    if not uses_channels_last(device):
        return torch.contiguous_format
    fmt = _FORMATS.get(loaded.visual)
    if fmt is None:
        fmt = _FORMATS[loaded.visual] = _try_channels_last(loaded, device)
    return fmt


def convert_4d(visual: torch.nn.Module, fmt: torch.memory_format) -> None:
    """4-D parameters and buffers (conv weights) to `fmt`, in place; others stay as they are
    (`Module.to(memory_format=...)` would also convert 5-D ones, which channels-last refuses)."""
    visual._apply(lambda t: t.to(memory_format=fmt) if t.dim() == 4 else t)


def _try_channels_last(loaded, device: torch.device) -> torch.memory_format:
    """Convert the model to channels-last and run two blank images; NCHW if that raises."""
    visual = loaded.visual
    convert_4d(visual, torch.channels_last)
    if (type(visual).__module__.partition(".")[0], type(visual).__name__) in CHANNELS_LAST_TOWERS:
        return torch.channels_last
    dtype = next(visual.parameters(), torch.empty(0)).dtype
    # two images: a .view() merging the batch axis passes channels-last with one image only
    blank = torch.zeros(2, 3, loaded.image_size, loaded.image_size, device=device, dtype=dtype)
    try:
        with torch.inference_mode():
            visual(blank.contiguous(memory_format=torch.channels_last))
    except Exception as err:  # noqa: BLE001 - the user's module may raise anything
        convert_4d(visual, torch.contiguous_format)
        log.info("%s does not run channels-last (%s: %s); running it NCHW-contiguous",
                 type(visual).__name__, type(err).__name__, str(err).splitlines()[0][:120])
        return torch.contiguous_format
    return torch.channels_last


# --- normalisation ----------------------------------------------------------------------------

def normalize_hwc(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]
                  ) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> (x / 255 - mean) / std float32, elementwise: the same bits for an
    image alone or in any batch, on any device.

    Each image row (W x 3 values) meets mean and std tiled along it: the same values as
    broadcasting over the channel axis, 5x faster than a 3-long innermost loop.
    """
    width = images.shape[-2]
    mean_t, std_t = _mean_std(tuple(mean), tuple(std), width, images.device)
    rows = images.reshape(*images.shape[:-2], width * 3)
    return rows.to(torch.float32).div_(255.0).sub_(mean_t).div_(std_t).view(images.shape)


@functools.lru_cache(maxsize=8)
def _mean_std(mean: tuple, std: tuple, width: int, device: torch.device
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Tiled along an image row, made once per device: a fresh copy to a GPU would wait for the
    work queued before it."""
    return tuple(torch.as_tensor(np.tile(np.asarray(v, dtype=np.float32), width), device=device)
                 for v in (mean, std))


class Images(torch.utils.data.Dataset):
    """uint8 (H, W, 3) images of a stimulus set with their index, for DataLoader workers: a
    quarter of float32's bytes to collate and copy; `batch_to_input` normalises the batch."""

    def __init__(self, stimulus_set) -> None:
        self.set = stimulus_set

    def __len__(self) -> int:
        return len(self.set)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.from_numpy(np.ascontiguousarray(self.set.render(i))), int(i)


# --- model inputs -----------------------------------------------------------------------------

def batch_to_input(images: torch.Tensor, loaded, device: torch.device) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> normalised (N, 3, H, W) on the device.

    NHWC memory seen as NCHW is channels-last already: no copy where that format is in use
    (`model_format`: deciding it the first time converts the model's 4-D weights in place).
    """
    if images.dtype != torch.uint8:
        raise ValueError(f"expected uint8 images (N, H, W, 3), got {images.dtype}")
    x = normalize_hwc(images.to(device, non_blocking=True), loaded.mean, loaded.std)
    return x.permute(0, 3, 1, 2).contiguous(memory_format=model_format(loaded, device))


def to_input(images: np.ndarray | torch.Tensor, loaded) -> torch.Tensor:
    """uint8 images, numpy (N, H, W, 3) or torch (N, 3, H, W) -> the normalised (N, 3, H, W)
    tensor on the model's device that the extraction computes for them."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    elif images.dim() == 4:
        images = images.permute(0, 2, 3, 1)
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[3] != 3:
        raise ValueError("expected uint8 images (N, H, W, 3) numpy or (N, 3, H, W) torch")
    return batch_to_input(images, loaded, loaded.device)


def render_inputs(stim_set, index: Sequence[int], loaded) -> tuple[np.ndarray, torch.Tensor]:
    """Images `index` of a stimulus set: uint8 pixels (N, H, W, 3) to draw on and their
    normalised tensor on the model's device."""
    pixels = np.stack([stim_set.render(int(i)) for i in index])
    return pixels, to_input(pixels, loaded)


def baseline(images: torch.Tensor, loaded, kind: str) -> torch.Tensor:
    """Integrated-gradients baseline shaped like the normalised `images`: a black image, or the
    mean colour (zeros after normalisation); same dtype, device and memory format."""
    if kind not in BASELINES:
        raise UsageError(f"baseline {kind!r}: choose {' or '.join(BASELINES)}")
    out = torch.zeros_like(images)
    if kind == "black":
        black = torch.zeros(1, 3, dtype=torch.uint8, device=images.device)  # one pixel
        out += normalize_hwc(black, loaded.mean, loaded.std).view(1, 3, 1, 1)
    return out


def default_workers(device: torch.device, processes: int = 1) -> int:
    """Rendering workers: none on CPU, where the model uses every core and rendering costs under
    1% of its forward (a worker only stalls torch's threads); else the cores left per process."""
    if device.type == "cpu":
        return 0
    return max(0, usable_cores() // processes - 1)


#: share of a GPU host's spare cores that render; the writers block in fsync as much as they
#: compute, so they get two threads per remaining core (bench/host.py: a Stroop image costs
#: about 0.5 ms of CPU to render into the batch ring and 0.3 ms to compress and write)
RENDER_SHARE = 0.6


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, e.g. under taskset or a scheduler)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def host_threads(device: torch.device, processes: int = 1, workers: int | None = None,
                 writers: int | None = None) -> tuple[int, int]:
    """(rendering workers, chunk-writer threads) of one extraction process.

    On CPU the model uses every core: no workers, one writer. On a GPU the cores of this process
    but one (the loop's own) are shared: RENDER_SHARE of them render, and two writer threads per
    remaining core (at least 4) compress and write. Given numbers are kept as given.
    """
    if device.type == "cpu":
        return (0 if workers is None else workers), (1 if writers is None else writers)
    spare = max(2, usable_cores() // processes - 1)
    if workers is None:
        workers = max(1, round(spare * RENDER_SHARE))
    if writers is None:
        writers = max(4, 2 * (spare - workers))
    return workers, writers

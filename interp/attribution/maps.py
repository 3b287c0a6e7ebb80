"""Input attributions with captum: of one unit's response at its argmax location, and of a naming
decision (similarity to the predicted prompt minus to the correct one). Heatmap overlays as PNG.

open_clip's Bottleneck uses in-place ReLUs, which captum's backward hooks (GuidedBackprop) cannot
wrap; every attribution runs on a deep copy of the visual tower with in-place ReLUs switched off.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
from PIL import Image
from torch import nn

from interp.hooks import trace

UNIT_METHODS = ("integrated_gradients", "guided_backprop")
NAMING_METHODS = ("integrated_gradients", "grad_cam")


def without_inplace(module: nn.Module) -> nn.Module:
    """Deep copy in eval mode with every nn.ReLU out of place (captum hooks need that)."""
    clone = copy.deepcopy(module).eval()
    for m in clone.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    for p in clone.parameters():
        p.requires_grad_(False)
    return clone


class BlockOutput(nn.Module):
    """The visual tower up to one block: input (N, 3, H, W) -> that block's map (N, C, h, w)."""

    def __init__(self, visual: nn.Module, block: str) -> None:
        super().__init__()
        self.visual, self.name = visual, block
        self.block = visual.get_submodule(block)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with trace({self.name: self.block}, keep=True, stop=True) as t:
            self.visual(x)
        return t.outputs[self.name]


class SimilarityGap(nn.Module):
    """Image -> (N, 11, 11) cosine-similarity differences s_i - s_j between colour prompts."""

    def __init__(self, visual: nn.Module, text: torch.Tensor) -> None:
        super().__init__()
        self.visual = visual
        self.register_buffer("text", text)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sim = nn.functional.normalize(self.visual(x).float(), dim=-1) @ self.text.T
        return sim[:, :, None] - sim[:, None, :]


@torch.no_grad()
def argmax_locations(block_model: BlockOutput, images: torch.Tensor, unit: int) -> np.ndarray:
    """(N, 2) (y, x) of the unit's maximum on each image (first in row-major order on ties)."""
    maps = block_model(images)[:, unit]
    flat = maps.flatten(1).argmax(dim=1).cpu().numpy()
    return np.stack(np.divmod(flat, maps.shape[-1]), axis=1)


def unit_attributions(block_model: BlockOutput, images: torch.Tensor, unit: int,
                      baseline: torch.Tensor, methods=UNIT_METHODS, steps: int = 32,
                      batch: int = 64) -> tuple[dict[str, torch.Tensor], np.ndarray]:
    """Attributions (N, 3, H, W) of the unit's response at its argmax on each image, per method."""
    from captum.attr import GuidedBackprop, IntegratedGradients  # slow import: only when used

    where = argmax_locations(block_model, images, unit)
    target = [(unit, int(y), int(x)) for y, x in where]
    out = {}
    if "integrated_gradients" in methods:
        out["integrated_gradients"] = IntegratedGradients(block_model).attribute(
            images, baselines=baseline, target=target, n_steps=steps,
            internal_batch_size=batch)
    if "guided_backprop" in methods:
        with warnings.catch_warnings():  # captum announces its ReLU hooks on every call
            warnings.filterwarnings("ignore", category=UserWarning, module="captum")
            out["guided_backprop"] = GuidedBackprop(block_model).attribute(images, target=target)
    return {k: v.detach() for k, v in out.items()}, where


def naming_attributions(gap: SimilarityGap, last_block: nn.Module, images: torch.Tensor,
                        predicted: np.ndarray, correct: np.ndarray, baseline: torch.Tensor,
                        methods=NAMING_METHODS, steps: int = 32,
                        batch: int = 64) -> dict[str, torch.Tensor]:
    """Per image, the pixels pushing s(predicted prompt) - s(correct prompt) up, per method.
    integrated_gradients: (N, 3, H, W); grad_cam: (N, 1, H, W), upsampled from the last block."""
    from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam

    target = [(int(p), int(c)) for p, c in zip(predicted, correct, strict=True)]
    out = {}
    if "integrated_gradients" in methods:
        out["integrated_gradients"] = IntegratedGradients(gap).attribute(
            images, baselines=baseline, target=target, n_steps=steps, internal_batch_size=batch)
    if "grad_cam" in methods:
        cam = LayerGradCam(gap, last_block).attribute(images, target=target,
                                                      relu_attributions=True)
        out["grad_cam"] = LayerAttribution.interpolate(cam, tuple(images.shape[-2:]),
                                                       interpolate_mode="bilinear")
    return {k: v.detach() for k, v in out.items()}


def heat(attribution: torch.Tensor) -> np.ndarray:
    """(C, H, W) attribution -> (H, W) magnitude in [0, 1] (channels summed, 99th pct = 1)."""
    mag = attribution.detach().abs().sum(dim=0).cpu().numpy()
    top = np.percentile(mag, 99)
    return np.clip(mag / top, 0, 1) if top > 0 else np.zeros_like(mag)


def overlay_png(path, image: np.ndarray, attribution: torch.Tensor,
                box: tuple[int, int, int, int] | None = None, scale: int = 1) -> None:
    """Save [image | heatmap over a dimmed image] side by side; `box` (y0, y1, x0, x1), half-open
    like interp.analysis.rf boxes, outlined."""
    from matplotlib import colormaps

    level = heat(attribution)[..., None]
    hot = colormaps["inferno"](level[..., 0])[..., :3]
    alpha = 0.85 * level
    blend = ((1 - alpha) * 0.6 * image / 255.0 + alpha * hot) * 255
    pair = np.concatenate([image, blend.astype(np.uint8)], axis=1)
    if box is not None:
        _outline(pair, box, image.shape[1])
    img = Image.fromarray(pair)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    img.save(path)


def _outline(pair: np.ndarray, box: tuple[int, int, int, int], width: int) -> None:
    """Draw a 1-pixel cyan rectangle (receptive field) on both halves, clipped to the image."""
    h = pair.shape[0]
    y0, y1, x0, x1 = max(box[0], 0), min(box[1], h) - 1, max(box[2], 0), min(box[3], width) - 1
    for dx in (0, width):
        pair[y0:y1 + 1, [x0 + dx, x1 + dx]] = (0, 255, 255)
        pair[[y0, y1], x0 + dx:x1 + dx + 1] = (0, 255, 255)

"""`shapes`: one filled shape of one colour on a uniform background of another (paper §2)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from stimuli.base import StimulusSet
from stimuli.combos import shape_combos
from stimuli.palette import COLOR_TERMS, PALETTE
from stimuli.rng import uniforms, uniforms_one

#: Circumradius as a fraction of the image size: smallest and largest shape.
SCALE_RANGE = (0.12, 0.35)
#: Pixels kept free between the shape and the image border.
MARGIN = 2


def _regular(n: int, phase_deg: float = 90.0) -> np.ndarray:
    a = np.deg2rad(phase_deg + 360.0 * np.arange(n) / n)
    return np.stack([np.cos(a), np.sin(a)], axis=1)


def _star(points: int = 5, inner: float = 0.45) -> np.ndarray:
    outer = _regular(2 * points)
    return outer * np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)[:, None]


def _cross(half_width: float = 0.3) -> np.ndarray:
    w = half_width
    quarter = [(1, -w), (1, w), (w, w)]
    pts = []
    for k in range(4):
        c, s = np.cos(k * np.pi / 2), np.sin(k * np.pi / 2)
        pts += [(x * c - y * s, x * s + y * c) for x, y in quarter]
    return np.array(pts)


def _unit(poly: np.ndarray) -> np.ndarray:
    """Scale so the farthest vertex is at distance 1 from the centre (the circumradius)."""
    return poly / np.hypot(poly[:, 0], poly[:, 1]).max()


#: Unit polygons in maths coordinates (y up), centred at the origin, circumradius 1.
SHAPES: dict[str, np.ndarray] = {
    "circle": _regular(72),
    "ellipse": _regular(72, 0.0) * np.array([1.0, 0.55]),
    "triangle": _regular(3),
    "square": _regular(4, 45.0),
    "pentagon": _regular(5),
    "hexagon": _regular(6),
    "star": _star(),
    "cross": _unit(_cross()),
}
SHAPE_NAMES = tuple(SHAPES)
_POLYGONS = tuple(SHAPES[name] for name in SHAPE_NAMES)
_COMBOS = shape_combos(len(SHAPE_NAMES))
_ROWS = [tuple(r) for r in _COMBOS.tolist()]
_COLORS = tuple(tuple(int(v) for v in rgb) for rgb in PALETTE)


class ShapesSet(StimulusSet):
    """8 shapes x 11 background colours x 10 object colours (!= background), seeded pose."""

    name = "shapes"
    label_names = {"shape": SHAPE_NAMES, "bg_color": COLOR_TERMS, "obj_color": COLOR_TERMS}

    @property
    def n_combos(self) -> int:
        return len(_COMBOS)

    def _labels(self, index: np.ndarray) -> dict[str, np.ndarray]:
        combo, _ = self.split(index)
        shape, bg, obj = _COMBOS[combo].T
        u = uniforms(self.seed, self.name, index, 4)
        scale = (SCALE_RANGE[0] + u[:, 1] * (SCALE_RANGE[1] - SCALE_RANGE[0])).astype(np.float32)
        radius = scale.astype(np.float64) * self.image_size
        free = self.image_size - 2 * (MARGIN + radius)
        return {
            "shape": shape.astype(np.int32), "bg_color": bg.astype(np.int32),
            "obj_color": obj.astype(np.int32),
            "rotation": (u[:, 0] * 360.0).astype(np.float32),
            "scale": scale,
            "x": (MARGIN + radius + u[:, 2] * free).astype(np.float32),
            "y": (MARGIN + radius + u[:, 3] * free).astype(np.float32),
        }

    def _labels_one(self, i: int) -> tuple[int, int, int, float, float, float, float]:
        """_labels for one index in plain Python (render speed); tests hold the two equal."""
        shape, bg, obj = _ROWS[i % self.n_combos]
        u = uniforms_one(self.seed, self.name, i, 4)
        f32 = np.float32
        scale = float(f32(SCALE_RANGE[0] + u[1] * (SCALE_RANGE[1] - SCALE_RANGE[0])))
        radius = scale * self.image_size
        free = self.image_size - 2 * (MARGIN + radius)
        x, y = (float(f32(MARGIN + radius + v * free)) for v in (u[2], u[3]))
        return shape, bg, obj, float(f32(u[0] * 360.0)), scale, x, y

    def _render(self, i: int) -> np.ndarray:
        shape, bg, obj, rotation, scale, x, y = self._labels_one(i)
        theta = np.deg2rad(rotation)
        c, s = np.cos(theta), np.sin(theta)
        poly = _POLYGONS[shape]
        radius = scale * self.image_size
        # Counter-clockwise as seen on screen: rotate in maths coordinates, then flip y.
        xy = np.empty((len(poly), 2))
        xy[:, 0] = x + radius * (poly[:, 0] * c - poly[:, 1] * s)
        xy[:, 1] = y - radius * (poly[:, 0] * s + poly[:, 1] * c)
        img = Image.new("RGB", (self.image_size, self.image_size), _COLORS[bg])
        ImageDraw.Draw(img).polygon(xy.ravel().tolist(), fill=_COLORS[obj])
        return np.array(img)

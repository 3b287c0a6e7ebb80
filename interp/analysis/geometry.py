"""Receptive-field geometry: per axis, map position i covers input pixels
[scale * i + offset, scale * i + offset + size). Pure (no torch), so readers of stored fields
(crops, cards) stay light; `interp.analysis.rf` measures these fields on a model.
"""

from __future__ import annotations

from dataclasses import dataclass

from interp.errors import ChromaError


@dataclass(frozen=True)
class Axis:
    """Input interval of map position i along one axis: [scale*i + offset, ... + size)."""

    scale: int = 1
    offset: int = 0
    size: int = 1

    def then(self, kernel: int, stride: int, padding: int, dilation: int = 1) -> Axis:
        """This mapping followed by a sliding window (conv or pool) of the given geometry."""
        span = dilation * (kernel - 1) + 1
        return Axis(self.scale * stride, self.offset - self.scale * padding,
                    self.scale * (span - 1) + self.size)

    def union(self, other: Axis) -> Axis:
        if self.scale != other.scale:
            raise ChromaError("residual branches with different strides; cannot compose fields")
        offset = min(self.offset, other.offset)
        end = max(self.offset + self.size, other.offset + other.size)
        return Axis(self.scale, offset, end - offset)


@dataclass(frozen=True)
class Field:
    """Receptive-field geometry of one block (y axis, x axis)."""

    y: Axis
    x: Axis

    @property
    def size(self) -> tuple[int, int]:
        return self.y.size, self.x.size

    def box(self, y: int, x: int) -> tuple[int, int, int, int]:
        """(y0, y1, x0, x1), half-open, in input pixels; may extend beyond the image."""
        y0, x0 = self.y.scale * y + self.y.offset, self.x.scale * x + self.x.offset
        return y0, y0 + self.y.size, x0, x0 + self.x.size

    def then(self, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple) -> Field:
        """This field followed by a 2-D sliding window, each argument a (y, x) pair."""
        k, s, p, d = kernel, stride, padding, dilation
        return Field(self.y.then(k[0], s[0], p[0], d[0]), self.x.then(k[1], s[1], p[1], d[1]))

    def union(self, other: Field) -> Field:
        return Field(self.y.union(other.y), self.x.union(other.x))

    def to_attrs(self) -> dict:
        """JSON-able form, stored with each block of RUN/analysis.zarr."""
        return {"scale": [self.y.scale, self.x.scale], "offset": [self.y.offset, self.x.offset],
                "size": [self.y.size, self.x.size]}

    @classmethod
    def from_attrs(cls, a: dict) -> Field:
        return cls(*(Axis(a["scale"][i], a["offset"][i], a["size"][i]) for i in (0, 1)))


IDENTITY = Field(Axis(), Axis())

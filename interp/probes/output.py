"""The files both probes write: JSON lines, CSV tables and the atlas's thumbnails."""

from __future__ import annotations

import json
import math
from pathlib import Path

THUMB_PX = 96


def write_jsonl(path: Path, records: list[dict]) -> None:
    with open(path, "w") as f:
        f.writelines(json.dumps(record) + "\n" for record in records)


def write_table(path: Path, rows: list[dict], columns: tuple[str, ...] | None = None,
                digits: int = 4) -> None:
    """Rows as CSV: floats to `digits` significant digits, rounding noise (|x| < 1e-12) as 0,
    NaN empty."""
    import pandas as pd

    def number(x: float) -> str:
        return "" if math.isnan(x) else f"{0.0 if abs(x) < 1e-12 else x:.{digits}g}"

    frame = pd.DataFrame(rows, columns=list(columns) if columns else None)
    frame.to_csv(path, index=False, float_format=number)


def write_thumbs(folder: Path, images, indices: set[int], prefix: str = "") -> None:
    """JPEG thumbnails of the images the atlas shows, `{prefix}{index}.jpg` (`images`: anything
    with `render(i)` -> uint8 (H, W, 3)); existing ones are kept."""
    from PIL import Image

    if not indices:
        return
    folder.mkdir(parents=True, exist_ok=True)
    for i in sorted(indices):
        target = folder / f"{prefix}{i}.jpg"
        if not target.exists():
            img = Image.fromarray(images.render(i)).resize((THUMB_PX, THUMB_PX),
                                                           Image.Resampling.BICUBIC)
            img.save(target, quality=88)

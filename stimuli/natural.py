"""`natural`: photographs, from a folder (one centre crop per file) or the photos bundled with
scikit-image (seeded crops); every image resized to image_size x image_size RGB.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import skimage
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from stimuli.base import StimulusSet
from stimuli.errors import ChromaError, UsageError
from stimuli.rng import uniforms

log = logging.getLogger(__name__)

EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")
#: Colour photographs inside scikit-image's own data folder (no pooch download needed).
BUNDLED_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "hubble_deep_field.jpg",
                  "ihc.png", "retina.jpg", "rocket.jpg", "motorcycle_left.png")
#: Bundled photos that are not natural scenes: a telescope field, a stained tissue section, a
#: fundus photograph.
NOT_SCENES = ("hubble_deep_field.jpg", "ihc.png", "retina.jpg")
#: What the bundled natural set changes: the numbers computed from natural images.
AFFECTED = "CSI, the corpus hue histogram and its Pearson r, and the not-activated / any-word rules"
#: Side of a bundled crop as a fraction of the photo's short side: smallest and largest.
CROP_RANGE = (0.3, 1.0)
RESAMPLE = Image.Resampling.BICUBIC
_ORIENTATION = 0x0112  # EXIF tag
#: Pillow shrinks by whole factors first while the crop is this many times the output (speed).
REDUCING_GAP = 3.0


def bundled_dir() -> Path:
    return Path(skimage.__file__).parent / "data"


def _stems(names: tuple[str, ...]) -> str:
    return ", ".join(Path(n).stem for n in names)


def caveat(short: bool = False) -> str:
    """The one-line warning every output carries when the natural set is the bundled photos
    (the only place this text is written: run.json, figures, atlas and cards read it here)."""
    if short:
        return (f"Natural set: crops of the {len(BUNDLED_PHOTOS)} photos bundled with "
                f"scikit-image ({len(NOT_SCENES)} not natural scenes), not ImageNet: {AFFECTED} "
                "are not comparable with the paper's ImageNet results.")
    return (f"The natural set is seeded crops of the {len(BUNDLED_PHOTOS)} photos bundled with "
            f"scikit-image ({_stems(BUNDLED_PHOTOS)}), of which {_stems(NOT_SCENES)} are not "
            f"natural scenes: {AFFECTED} are not comparable with ImageNet results "
            "(give --natural-dir with ImageNet-style photos for that).")


def to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB from any mode: EXIF orientation applied, 16-bit scaled, alpha over white."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img).astype(np.float64)
        img = Image.fromarray(np.clip(np.round(arr / 257.0), 0, 255).astype(np.uint8), "L")
    elif img.mode == "F":
        arr = np.asarray(img).astype(np.float64)
        arr = arr * 255.0 if arr.max(initial=0.0) <= 1.0 else arr
        img = Image.fromarray(np.clip(np.round(arr), 0, 255).astype(np.uint8), "L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB") if img.mode != "RGB" else img


def load_rgb(path: Path, draft_size: int | None = None) -> tuple[Image.Image, tuple[int, int]]:
    """Decode a whole image file to 8-bit RGB; raises on unreadable or truncated files.

    Returns the image and the photo's full (width, height) as displayed (EXIF orientation
    applied). draft_size lets JPEG decode at a reduced scale whose short side stays >= draft_size.
    """
    with Image.open(path) as img:
        width, height = img.size
        if img.getexif().get(_ORIENTATION, 1) in (5, 6, 7, 8):  # turned by a quarter
            width, height = height, width
        if draft_size is not None and img.format == "JPEG":
            img.draft("RGB", (draft_size, draft_size))
        img.load()
        return to_rgb(img), (width, height)


def crop_resize(img: Image.Image, crop: tuple[int, int, int], source_size: tuple[int, int],
                size: int) -> np.ndarray:
    """The square crop (y0, x0, side), in pixels of a source_size image, of img (the same photo
    decoded at source_size or smaller), resized to (size, size, 3) uint8."""
    y0, x0, side = crop
    sx, sy = img.width / source_size[0], img.height / source_size[1]
    box = (x0 * sx, y0 * sy, min(img.width, (x0 + side) * sx), min(img.height, (y0 + side) * sy))
    return np.array(img.resize((size, size), RESAMPLE, box=box, reducing_gap=REDUCING_GAP))


def index_folder(folder: Path) -> tuple[list[str], list[tuple[int, int]], list[dict]]:
    """Readable images under folder (sorted relative paths, sizes after EXIF) and skipped files.

    Every image is decoded once (JPEG at a reduced scale) so truncated files are caught here.
    Cached per process while no file under the folder changes (name, size or mtime).
    """
    paths = sorted(p for p in folder.rglob("*") if p.is_file())
    stats = [(p.relative_to(folder).as_posix(), p.stat()) for p in paths]
    key = (str(folder), tuple((rel, st.st_size, st.st_mtime_ns) for rel, st in stats))
    if key not in _INDEX_CACHE:
        _INDEX_CACHE.clear()  # keep one folder: the index of a big folder is not small
        _INDEX_CACHE[key] = _index(folder, paths, [st.st_size for _, st in stats])
    good, sizes, skipped = _INDEX_CACHE[key]
    return list(good), list(sizes), [dict(item) for item in skipped]


_INDEX_CACHE: dict[tuple, tuple[list[str], list[tuple[int, int]], list[dict]]] = {}


def _index(folder: Path, paths: list[Path], nbytes: list[int]):
    good, sizes, skipped = [], [], []
    for path, size in tqdm(list(zip(paths, nbytes, strict=True)), desc=f"indexing {folder}",
                           unit="file", leave=False, disable=None):
        rel = path.relative_to(folder).as_posix()
        if path.suffix.lower() not in EXTENSIONS:
            skipped.append({"path": rel, "reason": "not an image extension"})
            continue
        if size == 0:
            skipped.append({"path": rel, "reason": "empty file"})
            continue
        try:
            _, size = load_rgb(path, draft_size=64)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError,
                Image.DecompressionBombError) as err:
            skipped.append({"path": rel, "reason": f"{type(err).__name__}: {err}"})
            continue
        good.append(rel)
        sizes.append(size)
    return good, sizes, skipped


class NaturalSet(StimulusSet):
    """Photographs: one centre crop per file of natural_dir, or seeded crops of bundled photos."""

    name = "natural"

    def __init__(self, *, natural_dir: str | Path | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.folder = None if natural_dir is None else Path(natural_dir).expanduser().resolve()
        self._skipped: list[dict] = []
        if self.folder is None:
            self.root = bundled_dir()
            self.sources = tuple(BUNDLED_PHOTOS)
            self.sizes = [Image.open(self.root / p).size for p in self.sources]
            return
        if not self.folder.is_dir():
            raise UsageError(f"--natural-dir {natural_dir} is not a folder; "
                             "give a folder of photos")
        self.root = self.folder
        self.samples_per_combo = 1  # one centre crop per file
        sources, self.sizes, self._skipped = index_folder(self.folder)
        self.sources = tuple(sources)
        if not self.sources:
            raise ChromaError(f"no readable image in {self.folder} ({len(self._skipped)} files "
                              f"skipped); give a folder of jpg/png/webp/gif/bmp/tiff photos")
        if self._skipped:
            log.warning("natural: skipped %d unreadable files in %s (see the set's report)",
                        len(self._skipped), self.folder)

    @property
    def label_names(self) -> dict[str, tuple[str, ...]]:  # type: ignore[override]
        return {"source": self.sources}

    @property
    def n_combos(self) -> int:
        return len(self.sources)

    def spec(self) -> dict:
        pairs = zip(self.sources, self.sizes, strict=True)
        listing = "\n".join(f"{p}\t{w}x{h}" for p, (w, h) in pairs)
        return {**super().spec(), "natural_dir": None if self.folder is None else str(self.folder),
                "n_sources": len(self.sources),
                "sources_sha1": hashlib.sha1(listing.encode()).hexdigest()}

    def provenance(self) -> dict:
        """Where the photos come from, for run.json: `bundled` (with the caveat) or `folder`."""
        if self.folder is None:
            return {"provenance": "bundled", "photos": [Path(p).stem for p in self.sources],
                    "not_natural_scenes": [Path(p).stem for p in NOT_SCENES],
                    "n_images": len(self), "caveat": caveat()}
        return {"provenance": "folder", "folder": str(self.folder), "n_photos": len(self.sources),
                "n_skipped": len(self._skipped), "n_images": len(self)}

    def report(self) -> dict:
        if self.folder is None:
            return {}
        return {"folder": str(self.folder), "n_images": len(self.sources),
                "n_skipped": len(self._skipped), "skipped": list(self._skipped)}

    def _labels(self, index: np.ndarray) -> dict[str, np.ndarray]:
        source, sample = self.split(index)
        wh = np.array(self.sizes, dtype=np.int64).reshape(-1, 2)[source]
        short = wh.min(axis=1)
        if self.folder is None:
            u = uniforms(self.seed, self.name, index, 3)
            frac = CROP_RANGE[0] + u[:, 0] * (CROP_RANGE[1] - CROP_RANGE[0])
            side = np.where(sample == 0, short, np.maximum(1, (frac * short).astype(np.int64)))
            y0 = (u[:, 1] * (wh[:, 1] - side + 1)).astype(np.int64)
            x0 = (u[:, 2] * (wh[:, 0] - side + 1)).astype(np.int64)
            centre = sample == 0  # sample 0 of each photo is its centre crop
            y0 = np.where(centre, (wh[:, 1] - side) // 2, y0)
            x0 = np.where(centre, (wh[:, 0] - side) // 2, x0)
        else:
            side, y0, x0 = short, (wh[:, 1] - short) // 2, (wh[:, 0] - short) // 2
        return {"source": source.astype(np.int32), "crop_y0": y0.astype(np.int32),
                "crop_x0": x0.astype(np.int32), "crop_size": side.astype(np.int32)}

    def _render(self, i: int) -> np.ndarray:
        lab = {k: int(v[0]) for k, v in self._labels(np.array([i])).items()}
        width, height = self.sizes[lab["source"]]
        path = self.root / self.sources[lab["source"]]
        if self.folder is None:
            img = _cached_photo(str(path))
        else:
            try:
                img, _ = load_rgb(path, self._draft_size(lab["crop_size"], min(width, height)))
            except OSError as err:
                raise ChromaError(f"{path} was readable when the natural set was built but not "
                                  f"now ({err}); rerun to index the folder again") from err
        crop = (lab["crop_y0"], lab["crop_x0"], lab["crop_size"])
        return crop_resize(img, crop, (width, height), self.image_size)

    def _draft_size(self, crop_side: int, short_side: int) -> int:
        """Short side the decoded photo needs so the crop keeps at least image_size pixels."""
        return int(np.ceil(self.image_size * short_side / crop_side))


_PHOTOS: dict[str, Image.Image] = {}


def _cached_photo(path: str) -> Image.Image:
    """Bundled photos are few: decode each once per process."""
    if path not in _PHOTOS:
        _PHOTOS[path] = load_rgb(Path(path))[0]
    return _PHOTOS[path]

"""`natural`: photographs, from a folder (one centre crop per file) or the photos bundled with
scikit-image (seeded crops); every image resized to image_size x image_size RGB.
"""

from __future__ import annotations

import hashlib
import io
import logging
import warnings
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
#: Version of a folder set's images (the spec's `version`): 2 since plain JPEGs take
#: `render_jpeg` (resized by torch, not Pillow; 2026-12). The bundled set keeps RENDER_VERSION.
FOLDER_VERSION = 2


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


def render_file(path: Path, crop: tuple[int, int, int], source_size: tuple[int, int],
                size: int, draft_size: int) -> np.ndarray:
    """One image of a folder: a plain JPEG by `render_jpeg`, any other file by `render_pil`;
    raises OSError on unreadable files."""
    out = render_jpeg(path, crop, source_size, size, draft_size)
    return render_pil(path, crop, source_size, size, draft_size) if out is None else out


def render_pil(path: Path, crop: tuple[int, int, int], source_size: tuple[int, int], size: int,
               draft_size: int) -> np.ndarray:
    """The general path: `load_rgb` (every mode, EXIF orientation), then Pillow's bicubic
    resize of the exact (fractional) crop box (`crop_resize`)."""
    img, _ = load_rgb(path, draft_size)
    return crop_resize(img, crop, source_size, size)


def render_jpeg(path: Path, crop: tuple[int, int, int], source_size: tuple[int, int], size: int,
                draft_size: int) -> np.ndarray | None:
    """The fast path of a plain JPEG (3-channel YCbCr or RGB, 8-bit, no EXIF turn) decoded at
    full scale; None for any other file, which then takes `render_pil` unchanged.

    torchvision's `decode_jpeg` decodes it (libjpeg-turbo: the same pixels as Pillow's decoder,
    without Pillow's copies into and out of its 4-byte pixels; Pillow decodes where torchvision
    has no decoder or refuses the file, and raises what it raises) and torch's antialiased bicubic
    resizes the crop (Pillow's filter, a = -0.5, in fixed point, about 5x faster than Pillow's
    here). A JPEG that `Image.draft` shrinks in the DCT (by 2, 4 or 8, while the crop keeps at
    least `size` pixels: a short side of 2 x size or more) is left to `render_pil`, whose resize
    takes the crop box in fractions of the shrunk image's pixels.
    """
    data = path.read_bytes()
    with Image.open(io.BytesIO(data)) as img:
        if (img.format != "JPEG" or img.mode != "RGB"
                or img.getexif().get(_ORIENTATION, 1) != 1):
            return None
        img.draft("RGB", (draft_size, draft_size))
        if img.size != tuple(source_size):
            return None
        pixels = _decode_jpeg(data)
        if pixels is None:  # no torchvision decoder, or it refused the file: Pillow's pixels
            img.load()
            pixels = np.array(img)
    return _resize_crop(pixels, crop, size)


def _decode_jpeg(data: bytes) -> np.ndarray | None:
    """(H, W, 3) uint8 by torchvision's decoder, or None where it is missing or refuses the
    file."""
    try:
        import torch
        from torchvision.io import ImageReadMode, decode_jpeg
    except ImportError:
        return None
    with warnings.catch_warnings():  # torchvision 0.29: "decoders deprecated" at every call
        warnings.filterwarnings("ignore", "The image decoding", DeprecationWarning)
        try:
            chw = decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8),
                              mode=ImageReadMode.RGB)
        except RuntimeError:
            return None
    return chw.permute(1, 2, 0).numpy()  # libjpeg's own (H, W, 3) rows: no copy


def _resize_crop(pixels: np.ndarray, crop: tuple[int, int, int], size: int) -> np.ndarray:
    """The square crop (y0, x0, side) of pixels ((H, W, 3) uint8) resized to (size, size, 3)
    uint8 by torch's antialiased bicubic: Pillow's resize of the cropped image to within one
    level. Pillow's resize with a box (`crop_resize`) also reads the pixels just outside the crop,
    so the outermost output pixels of the two differ by up to a few tens of levels at edges."""
    import torch
    import torch.nn.functional as F

    y0, x0, side = crop
    box = torch.from_numpy(pixels)[y0:y0 + side, x0:x0 + side].permute(2, 0, 1).unsqueeze(0)
    # channels-last uint8 (N, C, H, W): the layout of torch's vectorised resize
    box = box.contiguous(memory_format=torch.channels_last)
    out = F.interpolate(box, size=(size, size), mode="bicubic", antialias=True)
    return out[0].permute(1, 2, 0).contiguous().numpy()


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
        self._crop_table: np.ndarray | None = None
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
        version = {} if self.folder is None else {"version": FOLDER_VERSION}
        return {**super().spec(), **version,
                "natural_dir": None if self.folder is None else str(self.folder),
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
        source, y0, x0, side = (int(v) for v in self._crops()[i])
        width, height = self.sizes[source]
        path = self.root / self.sources[source]
        if self.folder is None:
            return crop_resize(_cached_photo(str(path)), (y0, x0, side), (width, height),
                               self.image_size)
        try:
            return self._render_file(path, (y0, x0, side), (width, height))
        except OSError as err:
            raise ChromaError(f"{path} was readable when the natural set was built but not "
                              f"now ({err}); rerun to index the folder again") from err

    def _render_file(self, path: Path, crop: tuple[int, int, int],
                     source_size: tuple[int, int]) -> np.ndarray:
        """A folder's image: `render_file` (bench/natural.py times `render_pil` here instead)."""
        return render_file(path, crop, source_size, self.image_size,
                           self._draft_size(crop[2], min(source_size)))

    def _crops(self) -> np.ndarray:
        """(source, crop_y0, crop_x0, crop_size) of every image, computed once per process:
        `_labels` of a single index costs about 0.1 ms, 4 % of a JPEG's render."""
        if self._crop_table is None:
            lab = self._labels(np.arange(self.full_length(), dtype=np.int64))
            self._crop_table = np.stack([lab[k] for k in ("source", "crop_y0", "crop_x0",
                                                          "crop_size")], axis=1)
        return self._crop_table

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_crop_table": None}  # workers rebuild it: a smaller pickle

    def _draft_size(self, crop_side: int, short_side: int) -> int:
        """Short side the decoded photo needs so the crop keeps at least image_size pixels."""
        return int(np.ceil(self.image_size * short_side / crop_side))


_PHOTOS: dict[str, Image.Image] = {}


def _cached_photo(path: str) -> Image.Image:
    """Bundled photos are few: decode each once per process."""
    if path not in _PHOTOS:
        _PHOTOS[path] = load_rgb(Path(path))[0]
    return _PHOTOS[path]

"""Caption files: Flickr8k tokens, `image,caption` CSV, COCO captions JSON, JSON lines.

`read_captions(path, fmt)` gives {image name: [captions in file order]} and the number of lines
that could not be read (counted, as unreadable images are).
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterable
from pathlib import Path

from stimuli.errors import ChromaError, UsageError

log = logging.getLogger(__name__)

FORMATS = ("auto", "flickr8k", "csv", "coco", "jsonl")
IMAGE_COLUMNS = ("image", "filename", "file_name", "file", "path", "image_name")
CAPTION_COLUMNS = ("caption", "text", "comment", "sentence")

Captions = dict[str, list[str]]


def read_captions(path: str | Path, fmt: str = "auto") -> tuple[Captions, int]:
    """({image name: captions}, lines skipped) of a caption file in format `fmt`."""
    path = Path(path).expanduser()
    if fmt not in FORMATS:
        raise UsageError(f"--caption-format {fmt}: choose among {', '.join(FORMATS)}")
    if not path.is_file():
        raise UsageError(f"--captions {path}: no such file; give a caption file "
                         f"({', '.join(FORMATS[1:])})")
    if fmt == "auto":
        fmt = detect_format(path)
    readers = {"flickr8k": _flickr8k, "csv": _csv, "coco": _coco, "jsonl": _jsonl}
    try:
        captions, skipped = readers[fmt](path)
    except (UnicodeDecodeError, json.JSONDecodeError, csv.Error) as err:
        raise ChromaError(f"--captions {path}: not a readable {fmt} caption file ({err}); "
                          "check --caption-format") from None
    captions = {k: [c.strip() for c in v if c and c.strip()] for k, v in captions.items()}
    captions = {k: v for k, v in captions.items() if v}
    if not captions:
        raise ChromaError(f"--captions {path}: no caption read as {fmt} ({skipped} lines "
                          "skipped); check the file or --caption-format")
    if skipped:
        log.warning("captions: skipped %d unreadable lines of %s", skipped, path)
    return captions, skipped


def detect_format(path: Path) -> str:
    """The format of a caption file from its suffix and first line."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "coco"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    with open(path, encoding="utf-8", errors="replace") as f:
        first = next((line for line in f if line.strip()), "")
    if "\t" in first and "#" in first.split("\t")[0]:
        return "flickr8k"
    if first.lstrip().startswith("{"):
        return "jsonl"
    header = [h.strip().lower() for h in next(csv.reader([first]), [])]
    if set(header) & set(IMAGE_COLUMNS) and set(header) & set(CAPTION_COLUMNS):
        return "csv"
    raise UsageError(f"--captions {path}: cannot tell its format; give --caption-format "
                     f"({', '.join(FORMATS[1:])})")


def _add(out: Captions, image: str, caption: str) -> None:
    out.setdefault(image.strip(), []).append(caption)


def _flickr8k(path: Path) -> tuple[Captions, int]:
    """`name.jpg#k<TAB>caption` per line (Flickr8k.token.txt)."""
    out: Captions = {}
    skipped = 0
    for line in _lines(path):
        name, tab, caption = line.partition("\t")
        image = name.rsplit("#", 1)[0]
        if not tab or not image or not caption.strip():
            skipped += 1
            continue
        _add(out, image, caption)
    return out, skipped


def _csv(path: Path) -> tuple[Captions, int]:
    """A header naming an image column and a caption column, then one caption per row."""
    out: Captions = {}
    skipped = 0
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        fields = {h.strip().lower(): h for h in reader.fieldnames or ()}
        image = next((fields[c] for c in IMAGE_COLUMNS if c in fields), None)
        caption = next((fields[c] for c in CAPTION_COLUMNS if c in fields), None)
        if image is None or caption is None:
            raise ChromaError(f"--captions {path}: the CSV header needs an image column "
                              f"({'/'.join(IMAGE_COLUMNS)}) and a caption column "
                              f"({'/'.join(CAPTION_COLUMNS)})")
        for row in reader:
            if not (row.get(image) or "").strip() or not (row.get(caption) or "").strip():
                skipped += 1
                continue
            _add(out, row[image], row[caption])
    return out, skipped


def _coco(path: Path) -> tuple[Captions, int]:
    """COCO captions: `images` (id, file_name) and `annotations` (image_id, caption)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "annotations" not in data or "images" not in data:
        raise ChromaError(f"--captions {path}: not COCO captions JSON (needs `images` and "
                          "`annotations`); check --caption-format")
    names = {img.get("id"): img.get("file_name") for img in data["images"]
             if isinstance(img, dict)}
    out: Captions = {}
    skipped = 0
    for ann in data["annotations"]:
        name = names.get(ann.get("image_id")) if isinstance(ann, dict) else None
        if not name or not isinstance(ann.get("caption"), str):
            skipped += 1
            continue
        _add(out, name, ann["caption"])
    return out, skipped


def _jsonl(path: Path) -> tuple[Captions, int]:
    """One `{"image": name, "captions": [...]}` object per line (or `"caption": text`)."""
    out: Captions = {}
    skipped = 0
    for line in _lines(path):
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            skipped += 1
            continue
        captions = item.get("captions", item.get("caption")) if isinstance(item, dict) else None
        captions = [captions] if isinstance(captions, str) else captions
        if not isinstance(item, dict) or not isinstance(item.get("image"), str) \
                or not isinstance(captions, list):
            skipped += 1
            continue
        for caption in captions:
            if isinstance(caption, str):
                _add(out, item["image"], caption)
    return out, skipped


def _lines(path: Path) -> Iterable[str]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield line.rstrip("\n")

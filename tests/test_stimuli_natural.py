"""The `natural` set on a messy folder made here: broken files skipped and reported, odd modes
converted to 8-bit RGB, EXIF orientation applied, nested folders found; ImageNet-sized JPEGs by
the fast path (torchvision's decoder, torch's resize), every other file by Pillow as before."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from interp.errors import ChromaError, UsageError
from stimuli import get_set, natural
from stimuli.base import RENDER_VERSION

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def solid(mode: str, size: tuple[int, int], color) -> Image.Image:
    return Image.new(mode, size, color)


def two_halves(width: int, height: int, left, right) -> Image.Image:
    """RGB image, left half one colour, right half another."""
    arr = np.zeros((height, width, 3), dtype=np.uint8)
    arr[:, : width // 2] = left
    arr[:, width // 2:] = right
    return Image.fromarray(arr)


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    (root / "a" / "b").mkdir(parents=True)
    solid("RGB", (90, 60), RED).save(root / "good.jpg", quality=95)
    solid("RGB", (50, 50), GREEN).save(root / "a" / "b" / "nested.png")
    solid("RGB", (40, 40), BLUE).save(root / "a" / "blue.webp", lossless=True)
    solid("RGB", (40, 30), GREEN).save(root / "a" / "green.bmp")
    solid("RGB", (30, 40), BLUE).save(root / "a" / "blue.tiff")
    solid("CMYK", (40, 40), (0, 255, 255, 0)).save(root / "cmyk.jpg", quality=95)
    gray16 = np.full((40, 40), 32896, dtype=np.uint16)  # 32896 / 257 = 128
    Image.fromarray(gray16).save(root / "gray16.png")
    solid("RGB", (40, 40), RED).convert("P", palette=Image.Palette.ADAPTIVE).save(
        root / "palette.gif")
    solid("RGBA", (40, 40), (0, 0, 255, 0)).save(root / "transparent.png")  # over white
    rotated = two_halves(80, 40, RED, BLUE)  # stored landscape, displayed portrait
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    rotated.save(root / "exif.jpg", exif=exif, quality=95)
    noise = np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, format="JPEG", quality=90)
    (root / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (root / "empty.png").write_bytes(b"")
    (root / "notes.png").write_text("this is not a picture\n")
    (root / "readme.txt").write_text("photos for a test\n")
    return root


def test_messy_folder_is_indexed_sorted_with_broken_files_skipped(messy):
    s = get_set("natural", natural_dir=messy, image_size=32)
    assert s.label_names["source"] == (
        "a/b/nested.png", "a/blue.tiff", "a/blue.webp", "a/green.bmp", "cmyk.jpg", "exif.jpg",
        "good.jpg", "gray16.png", "palette.gif", "transparent.png")
    assert len(s) == 10
    report = s.report()
    assert report["n_images"] == 10 and report["n_skipped"] == 4
    reasons = {item["path"]: item["reason"] for item in report["skipped"]}
    assert set(reasons) == {"empty.png", "notes.png", "readme.txt", "truncated.jpg"}
    assert "empty" in reasons["empty.png"] and "truncated" in reasons["truncated.jpg"]
    assert "extension" in reasons["readme.txt"]


def test_every_mode_becomes_8bit_rgb_with_the_right_colours(messy):
    s = get_set("natural", natural_dir=messy, image_size=32)
    expected = {"a/b/nested.png": GREEN, "a/blue.webp": BLUE, "a/green.bmp": GREEN,
                "a/blue.tiff": BLUE, "cmyk.jpg": RED, "good.jpg": RED, "gray16.png": (128,) * 3,
                "palette.gif": RED, "transparent.png": (255, 255, 255)}
    names = s.label_names["source"]
    for i in range(len(s)):
        img = s.render(i)
        assert img.shape == (32, 32, 3) and img.dtype == np.uint8
        if names[i] in expected:
            assert np.abs(img.reshape(-1, 3).mean(0) - expected[names[i]]).max() < 6, names[i]


def test_exif_orientation_is_applied_before_the_centre_crop(messy):
    s = get_set("natural", natural_dir=messy, image_size=32)
    i = s.label_names["source"].index("exif.jpg")
    lab = {k: int(v[i]) for k, v in s.labels().items()}
    # Displayed 40 wide x 80 high: the centre square is 40 px, 20 px down from the top.
    assert (lab["crop_y0"], lab["crop_x0"], lab["crop_size"]) == (20, 0, 40)
    img = s.render(i).astype(int)
    # Red (the stored left half) is on top once turned 90 degrees clockwise, blue at the bottom.
    assert img[:12, :, 0].mean() > 200 and img[:12, :, 2].mean() < 50
    assert img[-12:, :, 2].mean() > 200 and img[-12:, :, 0].mean() < 50


def test_centre_crop_and_resize(messy):
    s = get_set("natural", natural_dir=messy, image_size=32)
    lab = s.labels()
    i = s.label_names["source"].index("good.jpg")
    assert (lab["crop_y0"][i], lab["crop_x0"][i], lab["crop_size"][i]) == (0, 15, 60)


def test_folder_without_readable_images_is_an_error(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "x.png").write_text("no")
    with pytest.raises(ChromaError, match="no readable image"):
        get_set("natural", natural_dir=tmp_path)
    with pytest.raises(UsageError, match="not a folder"):
        get_set("natural", natural_dir=tmp_path / "missing")


def test_folder_spec_changes_with_its_content(messy, tmp_path):
    before = get_set("natural", natural_dir=messy).spec()
    assert before == get_set("natural", natural_dir=messy).spec()
    solid("RGB", (20, 20), RED).save(tmp_path / "one.png")
    other = get_set("natural", natural_dir=tmp_path).spec()
    assert other["sources_sha1"] != before["sources_sha1"] and other["n_sources"] == 1


def test_one_image_per_file_and_the_index_follows_the_folder(tmp_path):
    solid("RGB", (20, 20), RED).save(tmp_path / "one.png")
    a = get_set("natural", natural_dir=tmp_path, samples_per_combo=500)
    assert len(a) == 1 and a.spec()["samples_per_combo"] == 1
    assert a.spec() == get_set("natural", natural_dir=tmp_path, samples_per_combo=3).spec()
    solid("RGB", (20, 20), BLUE).save(tmp_path / "two.png")
    b = get_set("natural", natural_dir=tmp_path)
    assert b.label_names["source"] == ("one.png", "two.png")
    assert b.render(1)[..., 2].min() == 255


def test_large_jpeg_decoded_at_reduced_scale_matches_full_decode(tmp_path):
    # 500 x 375: JPEG draft decoding may shrink it by 8 for a 32 px output; odd sizes round up.
    x = np.linspace(0, 255, 501)[:500]
    arr = np.stack([np.tile(x, (375, 1)), np.tile(x[::-1], (375, 1)),
                    np.full((375, 500), 90.0)], axis=2).astype(np.uint8)
    Image.fromarray(arr).save(tmp_path / "big.jpg", quality=95)
    s = get_set("natural", natural_dir=tmp_path, image_size=32)
    assert (s.labels()["crop_x0"][0], s.labels()["crop_size"][0]) == (62, 375)
    full = Image.open(tmp_path / "big.jpg").convert("RGB").crop((62, 0, 437, 375))
    want = np.array(full.resize((32, 32), Image.Resampling.BICUBIC)).astype(int)
    assert np.abs(s.render(0).astype(int) - want).mean() < 4


# --- ImageNet-sized JPEGs: the fast path ------------------------------------------------------

def photo(width: int, height: int, seed: int) -> Image.Image:
    """A photo-like RGB image: a bundled photograph resized, with sensor noise."""
    name = ("coffee.png", "astronaut.png", "rocket.jpg")[seed % 3]
    src = Image.open(natural.bundled_dir() / name)
    arr = np.asarray(src.convert("RGB").resize((width, height), Image.Resampling.BICUBIC))
    noise = np.random.default_rng(seed).normal(0, 4, arr.shape)
    return Image.fromarray(np.clip(arr + noise, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory):
    """ImageNet-sized JPEGs at quality 90 (landscape, portrait, 500 x 333, progressive, 4:4:4)
    and one of 1000 x 750, which Pillow decodes shrunk by 2 in the DCT."""
    root = tmp_path_factory.mktemp("imagenet")
    photo(500, 375, 0).save(root / "a_landscape.jpg", quality=90)
    photo(375, 500, 1).save(root / "b_portrait.jpg", quality=90)
    photo(500, 333, 2).save(root / "c_wide.jpg", quality=90, progressive=True)
    photo(500, 375, 3).save(root / "d_444.jpg", quality=90, subsampling=0)
    photo(1000, 750, 4).save(root / "e_large.jpg", quality=90)
    return root


def lanczos(path, lab: dict, size: int) -> np.ndarray:
    """The careful reference: the whole photo decoded, its exact crop resized by Lanczos."""
    y0, x0, side = lab["crop_y0"], lab["crop_x0"], lab["crop_size"]
    with Image.open(path) as img:
        img = img.convert("RGB")
    return np.asarray(img.resize((size, size), Image.Resampling.LANCZOS,
                                 box=(x0, y0, x0 + side, y0 + side))).astype(int)


def crop_of(s, i: int) -> tuple[tuple[int, int, int], tuple[int, int]]:
    lab = s.labels()
    return ((int(lab["crop_y0"][i]), int(lab["crop_x0"][i]), int(lab["crop_size"][i])),
            s.sizes[i])


def test_imagenet_sized_jpegs_are_224_rgb_deterministic_and_close_to_lanczos(imagenet):
    s = get_set("natural", natural_dir=imagenet)
    again = get_set("natural", natural_dir=imagenet)
    lab = s.labels()
    for i, name in enumerate(s.label_names["source"]):
        img = s.render(i)
        assert img.shape == (224, 224, 3) and img.dtype == np.uint8, name
        assert np.array_equal(img, s.render(i)) and np.array_equal(img, again.render(i)), name
        want = lanczos(imagenet / name, {k: int(v[i]) for k, v in lab.items()}, 224)
        assert np.abs(img.astype(int) - want).mean() < 1.5, name
        assert img.std() > 20, name  # a photo, not a flat colour


def test_plain_jpegs_take_the_fast_path_which_differs_from_pillow_only_at_the_border(imagenet):
    s = get_set("natural", natural_dir=imagenet)
    for i, name in enumerate(s.label_names["source"]):
        crop, wh = crop_of(s, i)
        fast = natural.render_jpeg(imagenet / name, crop, wh, 224, 224)
        pil = natural.render_pil(imagenet / name, crop, wh, 224, 224).astype(int)
        if name == "e_large.jpg":  # shrunk in the DCT: Pillow's resize, as before
            assert fast is None and np.array_equal(s.render(i), pil)
            continue
        assert fast is not None and np.array_equal(s.render(i), fast), name
        diff = np.abs(fast.astype(int) - pil)
        # the same decoder and filter: one level of rounding inside, a few at the crop's edge
        assert diff[2:-2, 2:-2].max() <= 1 and diff.mean() < 0.05, name


def test_without_torchvisions_decoder_pillow_decodes_the_same_pixels(imagenet, monkeypatch):
    s = get_set("natural", natural_dir=imagenet)
    fast = [s.render(i) for i in range(len(s))]
    monkeypatch.setattr(natural, "_decode_jpeg", lambda data: None)  # e.g. torchvision without
    for i in range(len(s)):
        assert np.array_equal(s.render(i), fast[i])


def test_every_file_but_plain_jpegs_renders_exactly_as_before(messy):
    s = get_set("natural", natural_dir=messy, image_size=32)
    plain = {"good.jpg"}  # cmyk.jpg, exif.jpg and every other format: Pillow, unchanged
    for i, name in enumerate(s.label_names["source"]):
        crop, wh = crop_of(s, i)
        draft = s._draft_size(crop[2], min(wh))
        fast = natural.render_jpeg(messy / name, crop, wh, 32, draft)
        assert (fast is not None) == (name in plain), name
        if name not in plain:
            before = natural.crop_resize(natural.load_rgb(messy / name, draft)[0], crop, wh, 32)
            assert np.array_equal(s.render(i), before), name


def test_greyscale_jpeg_takes_pillows_path(tmp_path):
    photo(200, 150, 0).convert("L").save(tmp_path / "grey.jpg", quality=90)
    s = get_set("natural", natural_dir=tmp_path, image_size=64)
    crop, wh = crop_of(s, 0)
    assert natural.render_jpeg(tmp_path / "grey.jpg", crop, wh, 64, 64) is None
    img = s.render(0)
    assert np.array_equal(img[..., 0], img[..., 2]) and img.std() > 10


def test_a_jpeg_truncated_after_indexing_is_an_error_naming_it(tmp_path):
    photo(500, 375, 0).save(tmp_path / "photo.jpg", quality=90)
    s = get_set("natural", natural_dir=tmp_path)
    data = (tmp_path / "photo.jpg").read_bytes()
    (tmp_path / "photo.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ChromaError, match="photo.jpg was readable"):
        s.render(0)


def test_the_folder_sets_images_have_their_own_version(imagenet):
    assert get_set("natural", natural_dir=imagenet).spec()["version"] == natural.FOLDER_VERSION
    assert natural.FOLDER_VERSION != RENDER_VERSION
    assert get_set("natural", samples_per_combo=1).spec()["version"] == RENDER_VERSION

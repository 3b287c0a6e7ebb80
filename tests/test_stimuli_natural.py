"""The `natural` set on a messy folder made here: broken files skipped and reported, odd modes
converted to 8-bit RGB, EXIF orientation applied, nested folders found."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from interp.errors import ChromaError, UsageError
from stimuli import get_set

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

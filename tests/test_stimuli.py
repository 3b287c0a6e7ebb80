"""Stimulus sets: counts, determinism, and every label checked against the rendered pixels."""

from __future__ import annotations

import pickle
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from interp.errors import UsageError
from interp.inputs import normalize_hwc
from stimuli import SET_NAMES, get_set
from stimuli.fonts import font_names, ink_box, text_fonts
from stimuli.palette import COLOR_TERMS, PALETTE, color_index
from stimuli.rng import _splitmix, uniforms
from stimuli.shapes import SHAPES
from stimuli.text import NON_COLOR_WORDS, StroopSet

PROCEDURAL = ("shapes", "stroop", "stroop-white", "words")


def sample(n_images: int, k: int = 24) -> list[int]:
    return sorted(set(np.random.default_rng(1).integers(0, n_images, k).tolist()))


def polygon_area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


# --- sizes and combinations ------------------------------------------------------------------

def test_paper_counts_without_rendering(monkeypatch):
    for name in PROCEDURAL:
        monkeypatch.setattr(type(get_set(name)), "_render", lambda *a: pytest.fail("rendered"))
    assert len(get_set("shapes")) == 440_000
    assert len(get_set("stroop")) == 495_000
    assert len(get_set("stroop-white")) == 45_000
    assert len(get_set("words")) == len(NON_COLOR_WORDS) * 11 * 10 * 500
    lab = get_set("stroop").labels()
    assert all(len(v) == 495_000 for v in lab.values())
    combo = (lab["word"] * 11 + lab["font_color"]) * 11 + lab["bg_color"]
    _, counts = np.unique(combo, return_counts=True)
    assert len(counts) == 990 and (counts == 500).all()
    lab = get_set("shapes").labels()
    combo = (lab["shape"] * 11 + lab["bg_color"]) * 11 + lab["obj_color"]
    _, counts = np.unique(combo, return_counts=True)
    assert len(counts) == 880 and (counts == 500).all()


@pytest.mark.parametrize("name", PROCEDURAL)
def test_combinations_obey_the_constraints_and_limit_covers_them_evenly(name):
    full = get_set(name, samples_per_combo=3)
    lab = full.labels()
    n = full.n_combos
    keys = ("shape", "bg_color", "obj_color") if name == "shapes" else (
        "word", "font_color", "bg_color")
    rows = np.stack([lab[k] for k in keys], 1)
    assert len({tuple(r) for r in rows[:n].tolist()}) == n  # first n images: every combination
    assert (rows[n:2 * n] == rows[:n]).all()  # index i -> combination i % n_combos
    if name == "shapes":
        assert (lab["obj_color"] != lab["bg_color"]).all()
    else:
        assert (lab["font_color"] != lab["bg_color"]).all()
    if name in ("stroop", "stroop-white"):
        assert (lab["word"] != lab["font_color"]).all() and (lab["word"] != lab["bg_color"]).all()
    if name == "stroop-white":
        assert (lab["bg_color"] == color_index("white")).all() and n == 90
    limited = get_set(name, samples_per_combo=3, limit=n // 2)
    assert len(limited) == n // 2
    for kind, values in limited.labels().items():
        assert (values == lab[kind][: n // 2]).all()
    assert (limited.render(n // 2 - 1) == full.render(n // 2 - 1)).all()
    with pytest.raises(IndexError):
        limited.render(n // 2)


def test_unknown_set_is_a_usage_error_naming_the_valid_sets():
    with pytest.raises(UsageError, match="shapes, stroop, stroop-white, words, natural"):
        get_set("colours")


# --- determinism ---------------------------------------------------------------------------

def test_uniforms_are_a_fixed_function_of_seed_set_and_index():
    u = uniforms(0, "shapes", np.array([0, 1, 123456]), 2)
    assert u.shape == (3, 2) and (u >= 0).all() and (u < 1).all()
    again = np.concatenate([uniforms(0, "shapes", np.array([i]), 2) for i in (0, 1, 123456)])
    assert (u == again).all()
    assert not np.allclose(u, uniforms(1, "shapes", np.array([0, 1, 123456]), 2))
    assert not np.allclose(u, uniforms(0, "stroop", np.array([0, 1, 123456]), 2))
    # Known answer: SplitMix64 from state 0 first gives 0xE220A8397B1DCDAF (Vigna's reference).
    assert int(_splitmix(np.zeros(1, dtype=np.uint64))[0]) == 0xE220A8397B1DCDAF
    # The numpy arithmetic agrees with the same definition in exact Python integers.
    mask = (1 << 64) - 1

    def mix(x: int) -> int:
        x = (x + 0x9E3779B97F4A7C15) & mask
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
        return x ^ (x >> 31)

    key = mix(mix(0) ^ zlib.crc32(b"shapes"))
    for row, index in enumerate((0, 1, 123456)):
        for stream in (0, 1):
            x = mix(mix(key ^ index) ^ ((stream * 0x9E3779B97F4A7C15) & mask))
            assert u[row, stream] == (x >> 11) / 2**53


@pytest.mark.parametrize("name", SET_NAMES)
def test_same_spec_same_bytes_and_indices_differ(name):
    a = get_set(name, samples_per_combo=2, image_size=64)
    b = pickle.loads(pickle.dumps(get_set(name, samples_per_combo=2, image_size=64)))
    assert a.spec() == b.spec()
    for i in (0, 1, len(a) - 1):
        assert a.render(i).tobytes() == b.render(i).tobytes()
    images = [a.render(i).tobytes() for i in range(6)]
    assert len(set(images)) == 6
    other_seed = get_set(name, samples_per_combo=2, image_size=64, seed=1)
    assert other_seed.spec() != a.spec()
    assert a.render(0).shape == (64, 64, 3) and a.render(0).dtype == np.uint8


@pytest.mark.parametrize(("name", "size"), [("shapes", 224), ("shapes", 97), ("stroop", 224),
                                            ("stroop-white", 64), ("words", 224)])
def test_per_image_fast_path_equals_the_vectorised_labels(name, size):
    s = get_set(name, image_size=size)
    index = np.random.default_rng(2).integers(0, len(s), 400)
    if name == "shapes":
        lab = s._labels(index)
        got = np.array([s._labels_one(int(i)) for i in index])
        want = np.stack([lab[k].astype(np.float64) for k in lab], 1)
    else:
        par = s._params(index)
        got = np.array([list(s._params_one(int(i)).values()) for i in index])
        want = np.stack([par[k] for k in s._params_one(0)], 1)
    assert (got == want).all()


# --- labels against pixels -----------------------------------------------------------------

def colour_mask(img: np.ndarray, color: int) -> np.ndarray:
    return (img == PALETTE[color]).all(axis=2)


def border(mask: np.ndarray) -> np.ndarray:
    return np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])


@pytest.mark.parametrize("size", [224, 64])
def test_shape_labels_match_pixels(size):
    s = get_set("shapes", image_size=size)
    lab = s.labels()
    for i in sample(len(s), 30):
        img = s.render(i)
        bg, obj = lab["bg_color"][i], lab["obj_color"][i]
        assert border(colour_mask(img, bg)).all()
        on_obj = colour_mask(img, obj)
        assert (colour_mask(img, bg) | on_obj).all()  # exactly two colours, no blending
        radius = float(lab["scale"][i]) * size
        poly = SHAPES[s.label_names["shape"][lab["shape"][i]]]
        # Filled pixels = polygon area plus part of a pixel along the outline (filled inclusively).
        outline = np.hypot(*np.diff(poly, axis=0, append=poly[:1]).T).sum() * radius
        excess = (on_obj.sum() - polygon_area(poly) * radius**2) / outline
        assert -0.1 <= excess <= 0.75
        ys, xs = np.nonzero(on_obj)
        assert xs.mean() + 0.5 == pytest.approx(lab["x"][i], abs=1.0)
        assert ys.mean() + 0.5 == pytest.approx(lab["y"][i], abs=1.0)


def test_ellipse_axis_follows_the_rotation_label():
    s = get_set("shapes", image_size=224)
    lab = s.labels()
    ellipses = np.nonzero(lab["shape"] == s.label_names["shape"].index("ellipse"))[0][:12]
    for i in ellipses:
        ys, xs = np.nonzero(colour_mask(s.render(int(i)), lab["obj_color"][i]))
        dx, dy = xs - xs.mean(), -(ys - ys.mean())  # y up: counter-clockwise angles
        angle = 0.5 * np.degrees(np.arctan2(2 * (dx * dy).mean(), (dx**2).mean() - (dy**2).mean()))
        diff = (angle - lab["rotation"][i]) % 180
        assert min(diff, 180 - diff) < 3


def check_word_image(s, lab, i: int) -> None:
    img = s.render(i)
    bg, fg = PALETTE[lab["bg_color"][i]].astype(float), PALETTE[lab["font_color"][i]].astype(float)
    on_bg = colour_mask(img, lab["bg_color"][i])
    margin = np.zeros_like(on_bg)
    margin[2:-2, 2:-2] = True
    assert on_bg[~margin].all()  # no ink touches the border
    # Every pixel lies between background and font colour (anti-aliasing only).
    t = ((img - bg) @ (fg - bg)) / ((fg - bg) @ (fg - bg))
    if s.image_size >= 224:
        assert colour_mask(img, lab["font_color"][i]).sum() > 0  # solid font-colour pixels
    else:  # 10-16 px text: thin strokes may have no fully covered pixel
        assert t.max() > 0.6
    blend = bg + np.clip(t, 0, 1)[..., None] * (fg - bg)
    assert np.abs(img - blend).max() <= 2.0
    # Word, font, size and position: an independent rendering of the labelled word, placed so
    # its ink box is centred on (x, y), gives the same coverage everywhere in the image.
    word = s.label_names["word"][lab["word"][i]]
    font = ImageFont.truetype(str(text_fonts()[lab["font"][i]]), int(lab["size"][i]),
                              layout_engine=ImageFont.Layout.BASIC)
    left, top, right, bottom = font.getbbox(word)
    ref = Image.new("L", (right - left, bottom - top))
    ImageDraw.Draw(ref).text((-left, -top), word, fill=255, font=font)
    x0, y0 = lab["x"][i] - ref.width / 2, lab["y"][i] - ref.height / 2
    assert x0 == int(x0) and y0 == int(y0)
    want = np.zeros(img.shape[:2])
    want[int(y0):int(y0) + ref.height, int(x0):int(x0) + ref.width] = np.array(ref) / 255
    assert np.abs(np.clip(t, 0, 1) - want).max() < 0.03


@pytest.mark.parametrize(("name", "size"), [("stroop", 224), ("stroop", 64),
                                            ("stroop-white", 224), ("words", 224)])
def test_word_labels_match_pixels(name, size):
    s = get_set(name, image_size=size)
    lab = s.labels()
    for i in sample(len(s), 16):
        check_word_image(s, lab, i)
    if name == "words":
        assert not set(s.label_names["word"]) & set(COLOR_TERMS)


def test_stroop_white_images_are_the_stroop_images():
    white, stroop = get_set("stroop-white", samples_per_combo=3), get_set("stroop",
                                                                         samples_per_combo=3)
    parent = white.stroop_index(np.arange(len(white)))
    wl, sl = white.labels(), stroop.labels()
    for kind in wl:
        assert (wl[kind] == sl[kind][parent]).all()
    for i in (0, 89, 90, 269):
        assert (white.render(i) == stroop.render(int(parent[i]))).all()


def test_fonts_are_text_fonts_and_ink_box_contains_every_glyph():
    names = font_names()
    assert {"DejaVuSans", "DejaVuSerif-BoldItalic", "DejaVuSansMono", "STIXGeneral",
            "cmr10"} <= set(names)
    assert not {"cmsy10", "cmex10", "DejaVuSansDisplay", "STIXSizOneSymReg"} & set(names)
    for f in range(len(names)):
        for word in (*COLOR_TERMS, *NON_COLOR_WORDS):
            for size in (10, 56):
                left, top, right, bottom = ink_box(f, word, size)
                canvas = Image.new("L", (right - left + 40, bottom - top + 40))
                font = ImageFont.truetype(str(text_fonts()[f]), size,
                                          layout_engine=ImageFont.Layout.BASIC)
                ImageDraw.Draw(canvas).text((20 - left, 20 - top), word, fill=255, font=font)
                ys, xs = np.nonzero(np.array(canvas))
                assert xs.min() >= 20 and ys.min() >= 20, (names[f], word, size)
                assert xs.max() < 20 + right - left and ys.max() < 20 + bottom - top


def test_stroop_varies_fonts_sizes_and_positions():
    lab = StroopSet().labels()
    assert len(np.unique(lab["font"])) == len(font_names())
    assert lab["size"].min() <= 22 and lab["size"].max() >= 50
    assert lab["x"].min() < 50 and lab["x"].max() > 174 and lab["y"].min() < 30


def test_bundled_natural_crops_lie_inside_their_photos():
    s = get_set("natural", samples_per_combo=4)
    lab = s.labels()
    assert len(s) == 4 * len(s.label_names["source"]) >= 32
    for i in range(len(s)):
        w, h = s.sizes[lab["source"][i]]
        y0, x0, side = lab["crop_y0"][i], lab["crop_x0"][i], lab["crop_size"][i]
        assert y0 >= 0 and x0 >= 0 and y0 + side <= h and x0 + side <= w
        assert side >= 0.29 * min(w, h)
    photo = np.array(Image.open(s.root / s.label_names["source"][lab["source"][9]]).convert("RGB"))
    y0, x0, side = lab["crop_y0"][9], lab["crop_x0"][9], lab["crop_size"][9]
    crop_mean = photo[y0:y0 + side, x0:x0 + side].reshape(-1, 3).mean(0)
    assert s.render(9).reshape(-1, 3).mean(0) == pytest.approx(crop_mean, abs=3)


# --- torch ---------------------------------------------------------------------------------

def test_normalize_maps_white_to_one_minus_mean_over_std():
    mean, std = (0.5, 0.25, 0.0), (0.25, 0.5, 1.0)
    white = normalize_hwc(torch.full((1, 1, 1, 3), 255, dtype=torch.uint8), mean, std)
    torch.testing.assert_close(white.flatten(), torch.tensor([2.0, 1.5, 1.0]))

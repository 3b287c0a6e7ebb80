"""TCAC on known answers: a planted CLIP that reads colour only (tests/planted_tcac.py) must lose
its top captions under grayscale and not under identity, colour flagged; reruns identical."""

from __future__ import annotations

import csv
import json
import pickle

import numpy as np
import pytest

from interp.errors import ChromaError, UsageError
from interp.probes import tcac as T
from interp.rundir import RunDir
from tests import planted_tcac, probe_pages

COLOUR = {"model": "tests.planted_tcac:colour_reader", "pretrained": "none", "seed": 0,
          "layers": ["probe"]}
FAST = {"n_boot": 1000, "n_permutations": 1000, "corpus_size": 120, "workers": 0}


def rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def colour_run(tmp_path_factory):
    """TCAC of the colour reader on 120 synthetic images, every transform; texts counted."""
    planted_tcac.TOKENIZED.clear()
    run = tmp_path_factory.mktemp("tcac") / "run"
    out = T.tcac(run, model=COLOUR, **FAST)
    return run, out, dict(planted_tcac.TOKENIZED)


def by_transform(out) -> dict[str, dict]:
    return {r["transform"]: r for r in rows(out / "summary.csv")}


@pytest.mark.slow
def test_grayscale_moves_the_top_captions_and_identity_none(colour_run):
    _, out, _ = colour_run
    summary = by_transform(out)
    assert list(summary) == list(T.TRANSFORMS)
    gray, ident = summary["grayscale"], summary["identity"]
    assert float(gray["ci_low"]) > 0 and float(gray["diff_ci_low"]) > 0
    assert float(gray["mean_delta"]) > float(ident["mean_delta"])
    # Δ >= 0 with mean 0: zero for every image
    assert float(ident["mean_delta"]) == 0 and float(ident["ci_high"]) == 0
    lines = (out / "identity.jsonl").read_text().splitlines()
    assert all(json.loads(line)["delta"] == 0 for line in lines)
    # the colour reader is blind to a flip: nothing moves
    assert float(summary["hflip"]["mean_delta"]) == 0


@pytest.mark.slow
def test_colour_loses_under_grayscale(colour_run):
    _, out, _ = colour_run
    table = [r for r in rows(out / "failure_types.csv") if r["transform"] == "grayscale"]
    colour = next(r for r in table if r["category"] == "colour")
    assert float(colour["effect"]) < 0 and float(colour["ci_high"]) < 0
    assert float(colour["q"]) < 0.05 and colour["expected"] == "True"
    effects = {r["category"]: float(r["effect"]) for r in table if r["effect"]}
    assert min(effects, key=effects.get) == "colour"


@pytest.mark.slow
def test_files_and_run_record(colour_run):
    run, out, _ = colour_run
    assert out == RunDir(run).tcac
    names = {p.name for p in out.iterdir()}
    assert {"summary.csv", "failure_types.csv", "summary.png", "report.md"} <= names
    assert {f"{t}.jsonl" for t in T.TRANSFORMS} <= names
    cases = [json.loads(line) for line in (out / "grayscale.jsonl").read_text().splitlines()]
    assert len(cases) == 100
    assert [c["delta"] for c in cases] == sorted((c["delta"] for c in cases), reverse=True)
    first = cases[0]
    assert len(first["before"]) == len(first["after"]) == first["top"] == 10
    assert len(first["own_ranks_before"]) == len(first["own_captions"]) == 3
    record = json.loads((run / "run.json").read_text())["tcac"]
    assert record["models"]["clip"]["model"] == COLOUR["model"]
    assert record["corpus"]["kind"] == "synthetic" and record["seeds"]["stats"] == 0
    assert record["transform_params"]["rotation"] == {"degrees": [-30.0, 30.0]}
    assert set(record["outputs"]) >= {"summary", "failure_types", "figure", "report"}
    report = (out / "report.md").read_text()
    assert "RandomPerspective" in report and "from interp.probes.tcac import tcac" in report


@pytest.mark.slow
def test_thumbnails_of_the_shown_cases_before_and_after(colour_run):
    from PIL import Image

    _, out, _ = colour_run
    for name in T.TRANSFORMS[1:]:
        shown = [json.loads(line)["index"] for line in
                 (out / f"{name}.jsonl").read_text().splitlines()[:3]]
        for i in shown:
            assert (out / "thumbs" / f"{i}.jpg").exists() and (out / "thumbs" /
                                                               f"{name}-{i}.jpg").exists()
    assert not list((out / "thumbs").glob("identity-*"))
    assert len(list((out / "thumbs").glob("grayscale-*"))) == 3
    i = json.loads((out / "grayscale.jsonl").read_text().splitlines()[0])["index"]
    spread = [np.ptp(np.asarray(Image.open(out / "thumbs" / name), np.int16), axis=2).mean()
              for name in (f"{i}.jpg", f"grayscale-{i}.jpg")]
    assert spread[0] > 20 and spread[1] < 3  # the colour image, then its gray version


@pytest.mark.slow
def test_tcac_images_spread_over_the_corpus(tmp_path):
    part = T.tcac(tmp_path / "run", model=COLOUR, **FAST, tcac_images=40,
                  transforms=["grayscale"], show=0)
    gray = by_transform(part)["grayscale"]
    assert gray["n_images"] == "40" and float(gray["ci_low"]) > 0
    ids = {json.loads(line)["image"] for line in
           (part / "grayscale.jsonl").read_text().splitlines()}
    assert len(ids) == 40 and {i.split("/")[0] for i in ids} == {"shapes", "stroop"}
    corpus = json.loads((tmp_path / "run" / "run.json").read_text())["tcac"]["corpus"]
    assert corpus["report"]["spread_of"] == 120 and corpus["n_images"] == 40
    assert not (part / "thumbs").exists()
    with pytest.raises(UsageError, match="--tcac-images 0"):
        T.tcac(tmp_path / "bad", model=COLOUR, tcac_images=0)


def test_spread_corpus_keeps_ids_captions_and_pixels():
    from stimuli.corpus import synthetic_corpus

    corpus = synthetic_corpus(10, 0)
    part = corpus.spread(4)
    assert part.ids == [corpus.ids[i] for i in (0, 3, 6, 9)]
    assert part.captions == [corpus.captions[i] for i in (0, 3, 6, 9)]
    assert np.array_equal(part.images(32).render(1), corpus.images(32).render(3))
    assert corpus.spread(10) is corpus and part.spec() != corpus.spec()


@pytest.mark.slow
def test_each_caption_encoded_once_and_rerun_identical(colour_run):
    run, out, counted = colour_run
    from stimuli.corpus import synthetic_corpus

    texts, _ = T.unique_captions(synthetic_corpus(120, 0).captions)
    assert set(counted) == set(texts) and set(counted.values()) == {1}
    def files() -> dict:
        return {p.relative_to(out): p.read_bytes() for p in out.rglob("*")
                if p.is_file() and p.suffix != ".png"}

    before = files()
    planted_tcac.TOKENIZED.clear()
    T.tcac(run, model=COLOUR, **FAST)
    assert not planted_tcac.TOKENIZED  # the caption embeddings came from the cache
    assert files() == before


@pytest.fixture(scope="module")
def base():
    from stimuli.corpus import synthetic_corpus

    return synthetic_corpus(12, 0).images(32)


def test_transforms_seeded_per_image_and_picklable(base):
    moved = T.TransformedImages(base, "rotation", 0)
    again = pickle.loads(pickle.dumps(moved))
    assert np.array_equal(moved.render(3), again.render(3))
    assert np.array_equal(moved.render(3), moved.render(3))
    other = T.TransformedImages(base, "rotation", 1)
    assert not np.array_equal(moved.render(3), other.render(3))
    assert moved.spec()["seed"] == 0 and moved.spec()["params"] == {"degrees": [-30.0, 30.0]}
    assert moved.name == "corpus-rotation" and len(moved) == len(base)


def test_flip_inversion_perspective_always_applied(base):
    flip, inv, persp = (T.TransformedImages(base, n, 0) for n in ("hflip", "inversion",
                                                                   "perspective"))
    for i in range(len(base)):
        image = base.render(i)
        assert np.array_equal(flip.render(i), image[:, ::-1])
        assert np.array_equal(inv.render(i), 255 - image)
        assert not np.array_equal(persp.render(i), image)
        assert T.TransformedImages(base, "grayscale", 0).render(i).shape == image.shape


def test_deltas_and_ranking_known_answers():
    text = np.eye(4, dtype=np.float32)
    pools = np.array([[0, 1, 2, 3], [2, 3, -1, -1]])
    image = np.array([[0.1, 0.4, 0.3, 0.2], [0, 0, 0.5, 0.5]], dtype=np.float32)
    order, sims = T.rank_pools(image, text, pools)
    assert order.tolist() == [[1, 2, 3, 0], [2, 3, -1, -1]]  # tie -> lower caption index
    assert sims[1, 2] == -np.inf
    after = np.array([[0, 3, 2, 1], [3, 2, -1, -1]])
    k = np.array([2, 2])
    assert T.deltas(order, after, k).tolist() == [2, 0]
    assert T.ranks_of(order, [[0], [3, 2]]) == [[4], [2, 1]]


def test_pools_and_captions():
    texts, own = T.unique_captions([["a", "b", "a"], ["b", "c"]])
    assert texts == ["a", "b", "c"] and own == [[0, 1], [1, 2]]
    emb = np.array([[1, 0], [0.9, 0.1], [0, 1]], dtype=np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    assert T.caption_pools(emb, [[0], [2]], 1) == [[0, 1], [2, 1]]
    assert T.parse_transforms("hflip,grayscale") == ["identity", "grayscale", "hflip"]
    assert T.parse_transforms(None) == list(T.TRANSFORMS)


@pytest.mark.slow
def test_the_atlas_probes_page_shows_each_transform_before_and_after(colour_run, tmp_path):
    run, out, _ = colour_run
    page = probe_pages.probes_page(run, "tcac", tmp_path)
    assert 'href="probes.html"' in (page.parent / "index.html").read_text()
    html = page.read_text()
    sources = probe_pages.local_links(page)
    assert all((page.parent / s).exists() for s in sources), sources
    assert sum("/thumbs/" in s for s in sources) == 2 * 3 * (len(T.TRANSFORMS) - 1)
    assert html.count('class="case tcac"') == 3 * (len(T.TRANSFORMS) - 1)
    assert 'id="tcac-grayscale"' in html and 'id="tcac-identity"' not in html
    assert "<s>" in html and "no DAF result" in html
    shifts = html[html.index("Category shifts"):html.index('id="tcac-grayscale"')]
    assert "<td>grayscale</td><td>colour</td>" in shifts


@pytest.mark.slow
def test_tiny_clip_end_to_end(tmp_path, tiny_settings):
    out = T.tcac(tmp_path / "run", model=tiny_settings, corpus_size=16,
                 transforms=["grayscale", "hflip"], pool_neighbours=5, n_boot=50,
                 n_permutations=50, workers=0)
    assert [r["transform"] for r in rows(out / "summary.csv")] == ["identity", "grayscale",
                                                                   "hflip"]
    assert float(by_transform(out)["identity"]["mean_delta"]) == 0
    assert (out / "hflip.jsonl").exists() and (out / "summary.png").stat().st_size > 0


def test_model_without_text_tower_refused(tmp_path):
    planted = {"model": "tests.planted:build", "pretrained": "none", "seed": 0,
               "layers": ["units"]}
    with pytest.raises(ChromaError, match="no text tower") as err:
        T.tcac(tmp_path / "run", model=planted, corpus_size=8)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "run" / "tcac").exists()


@pytest.mark.parametrize("kwargs, match", [
    ({"transforms": ["grayscale", "blur"]}, "unknown blur"),
    ({"top": 0}, "--top"),
    ({"pool_neighbours": 0}, "--pool-neighbours"),
    ({"dtype": "int8"}, "--dtype"),
])
def test_bad_settings_refused_before_writing(tmp_path, kwargs, match):
    with pytest.raises(UsageError, match=match) as err:
        T.tcac(tmp_path / "run", model=COLOUR, corpus_size=8, **kwargs)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "run").exists()


def test_too_many_neighbours_refused(tmp_path):
    with pytest.raises(UsageError, match="distinct captions"):
        T.tcac(tmp_path / "run", model=COLOUR, corpus_size=4, pool_neighbours=50)
    assert not (tmp_path / "run" / "tcac").exists()


def test_worker_renders_the_same_pixels(base):
    import torch

    from interp.inputs import Images

    moved = T.TransformedImages(base, "elastic", 3)
    loader = torch.utils.data.DataLoader(Images(moved), batch_sampler=[[0, 5], [7, 2]],
                                         num_workers=2)
    for batch, index in loader:
        for image, i in zip(batch, index.tolist(), strict=True):
            assert np.array_equal(image.numpy(), moved.render(i))


@pytest.mark.slow
def test_factory_without_visual_uses_its_own_text_side(tmp_path):
    model = {"model": "tests.planted_tcac:flat_reader", "pretrained": "none", "seed": 0,
             "layers": ["inner.probe"]}
    out = T.tcac(tmp_path / "run", model=model, corpus_size=40, transforms=["grayscale"],
                 n_boot=100, n_permutations=100, workers=0)
    assert float(by_transform(out)["grayscale"]["ci_low"]) > 0


@pytest.mark.slow
def test_the_tcac_command_runs_the_step_and_the_reader_gives_its_summary(tmp_path, capsys):
    from interp.api import Run
    from interp.cli import main

    run = tmp_path / "run"
    assert main(["tcac", "--run-dir", str(run), "--model", "interp.models:tiny_clip",
                 "--pretrained", "none", "--corpus-size", "24", "--transforms", "grayscale",
                 "--pool-neighbours", "3", "--top", "3", "--permutations", "99",
                 "--bootstrap", "99"]) == 0
    assert capsys.readouterr().out.strip() == str(run / "tcac")
    summary = Run(run).tcac_summary()
    assert summary["transform"].tolist() == ["identity", "grayscale"]
    assert main(["tcac", "--run-dir", str(run), "--transforms", "sepia"]) == 2

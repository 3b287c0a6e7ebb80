"""The DAF probe on known answers: a CLIP side planted colour-blind (it embeds the luminance
image) against a reference that sees colour must give colour as the top significant failure
type and not position; caption files in every format; one-line refusals of bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from interp.api import Run
from interp.cli import main
from interp.errors import ChromaError, UsageError
from interp.probes import discrepancy as dis
from interp.probes.lexicon import Lexicon
from interp.probes.neighbours import compare, nearest
from tests import probe_pages
from tests.planted_probes import GRAY

PLANTED = ["--model", GRAY["model"], "--pretrained", "none", "--layers", "pool",
           "--reference", "tests.planted_probes:rgb_pixels", "--permutations", "1000",
           "--bootstrap", "500"]


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("daf") / "run"
    assert main(["daf", "--run-dir", str(run), *PLANTED, "--corpus-size", "300",
                 "--blind-rank", "20"]) == 0
    return run


@pytest.mark.slow
def test_colour_blind_clip_gives_colour_as_the_top_failure_type_and_not_position(planted_run):
    types = pd.read_csv(planted_run / "daf" / "failure_types.csv")
    assert {"category", "n_queries", "effect", "ci_low", "ci_high", "p", "q"} <= set(types)
    clip_failures = types[types.significant & (types.effect > 0)].sort_values("effect")
    assert clip_failures.category.iloc[-1] == "colour"
    colour = types.set_index("category").loc["colour"]
    assert colour.ci_low > 0 and colour.q < 0.01
    assert "position" not in set(clip_failures.category)
    info = json.loads((planted_run / "run.json").read_text())["daf"]
    assert info["results"]["failure_types"][0] == "colour"
    assert info["settings"]["k"] == 10 and info["reference"]["model"].endswith("rgb_pixels")


@pytest.mark.slow
def test_failure_cases_pairs_report_and_prompt_are_written(planted_run):
    out = planted_run / "daf"
    failures = Run(planted_run).daf_failures()
    assert failures and all(f["overlap"] <= 2 for f in failures)
    first = failures[0]
    assert len(first["clip_only"]) == 10 - first["overlap"] == len(first["reference_only"])
    assert all(n["rank_other"] > 0 and n["caption"] for n in first["clip_only"])
    pairs = pd.read_csv(out / "pairs.csv")
    assert (pairs.reference_rank > 20).all() and (pairs.clip_rank <= 10).all()
    report = (out / "report.md").read_text()
    assert "| colour |" in report and "CLIP failure" in report
    prompt = (out / "prompt.txt").read_text()
    assert "I will provide a series of data" in prompt and first["caption"] in prompt
    assert (out / "failure_types.png").stat().st_size > 1000
    assert (out / "thumbs" / f"{first['query']}.jpg").exists()
    assert Run(planted_run).daf_types().category.iloc[0] == "colour"


@pytest.mark.slow
def test_a_rerun_uses_the_cached_embeddings_and_gives_the_same_tables(planted_run, tmp_path,
                                                                     monkeypatch):
    import shutil

    from interp.probes import encoders

    copy = shutil.copytree(planted_run, tmp_path / "copy")
    before = (copy / "daf" / "failure_types.csv").read_text()
    monkeypatch.setattr(encoders.ImageEncoder, "encode", lambda *a, **k: pytest.fail("encoded"))
    monkeypatch.setattr(encoders.ImageEncoder, "_dim", lambda self, images, dtype: 16 if
                        self.role == "clip" else 48)
    assert main(["daf", "--run-dir", str(copy), *PLANTED[6:], "--corpus-size", "300",
                 "--blind-rank", "20"]) == 0
    assert (copy / "daf" / "failure_types.csv").read_text() == before


@pytest.mark.slow
def test_identical_encoders_have_no_failures(tmp_path):
    from interp.probes.encoders import ImageEncoder

    run = tmp_path / "run"
    assert main(["daf", "--run-dir", str(run), *PLANTED[:4], "--layers", "pool",
                 "--reference", "tests.planted_probes:gray_pixels", "--corpus-size", "60",
                 "--k", "5", "--max-overlap", "0", "--blind-rank", "20"]) == 0
    assert Run(run).daf_failures() == [] and ImageEncoder


# --- neighbours and statistics on hand-made arrays ----------------------------------------------

def test_exact_neighbours_match_brute_force_and_ignore_the_block_size():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(203, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    truth = np.argsort(-sim, axis=1, kind="stable")[:, :7]
    for block in (1, 50, 1024):
        got = nearest(x, 7, block_rows=block)
        np.testing.assert_array_equal(got.index, truth)
    cmp = compare(x, x[:, ::-1].copy(), 7, block_rows=64)
    rank = np.argsort(np.argsort(-(x[:, ::-1] @ x[:, ::-1].T - np.eye(203) * 9), axis=1,
                                 kind="stable"), axis=1) + 1
    np.testing.assert_array_equal(cmp.a_rank_in_b, np.take_along_axis(rank, cmp.a.index, 1))
    shard = compare(x, x[:, ::-1].copy(), 7, block_rows=16, queries=range(50, 120))
    for field in ("a_rank_in_b", "b_rank_in_a"):  # cosines: equal to the last float bit or so
        np.testing.assert_array_equal(getattr(shard, field), getattr(cmp, field)[50:120])
    np.testing.assert_allclose(shard.a_sim_in_b, cmp.a_sim_in_b[50:120], atol=1e-6)
    np.testing.assert_array_equal(shard.b.index, cmp.b.index[50:120])


def test_ties_go_to_the_lower_index():
    x = np.array([[1, 0], [1, 0], [1, 0], [0, 1]], dtype=np.float32)
    assert nearest(x, 2).index.tolist() == [[1, 2], [0, 2], [0, 1], [0, 1]]
    # cross ranks in a space full of tied rows: the position in a stable sort of the cosines
    rng = np.random.default_rng(1)
    a = rng.normal(size=(40, 4)).astype(np.float32)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b = np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=40)]
    sim = b @ b.T - np.eye(40) * 9
    rank = np.argsort(np.argsort(-sim, axis=1, kind="stable"), axis=1, kind="stable") + 1
    cmp = compare(a, b, 5, block_rows=16)
    np.testing.assert_array_equal(cmp.a_rank_in_b, np.take_along_axis(rank, cmp.a.index, 1))


def test_category_effect_is_clip_only_minus_reference_only_mismatch():
    from interp.probes.neighbours import Comparison, Neighbours

    captions = ["a red star", "a blue star", "a red circle", "a dog", "a red square"]
    a = Neighbours(np.array([[1, 3]]), np.zeros((1, 2), np.float32))
    b = Neighbours(np.array([[2, 4]]), np.zeros((1, 2), np.float32))
    cmp = Comparison(a, b, *(np.zeros((1, 2)),) * 4)
    lex = Lexicon({"colour": ["red", "blue"], "shape": ["star", "circle", "square"]})
    fx = dis.category_effects(cmp, captions, np.array([0]), lex)
    # colour: CLIP-only {blue} vs {red} = 1 (the dog has no colour word: left out), reference 0
    # shape: CLIP-only {star} = 0; reference-only {circle}, {square} = 1 each
    np.testing.assert_allclose(fx, [[1.0, -1.0]])
    vocab, words = dis.word_effects(cmp, captions, np.array([0]), min_count=1)
    assert words[0, vocab.index("red")] == 1.0 and words[0, vocab.index("star")] == -0.5


def test_sign_flip_and_bh_on_known_data():
    from interp.probes.stats import benjamini_hochberg, sign_flip_p, sign_flip_p_columns

    rng = np.random.default_rng(1)
    assert sign_flip_p(np.full(12, 0.5), 999, rng) == pytest.approx(2 / 1000, abs=2e-3)
    assert sign_flip_p(rng.normal(size=200), 999, rng) > 0.01
    both = np.column_stack([np.full(10, 1.0), [np.nan] * 10])
    assert np.isnan(sign_flip_p_columns(both, 99, rng)[1])
    np.testing.assert_allclose(benjamini_hochberg(np.array([0.01, 0.02, 0.03, 0.5])),
                               [0.04, 0.04, 0.04, 0.5])


# --- corpora and bad input -------------------------------------------------------------------

def _photos(folder, names):
    folder.mkdir()
    for i, name in enumerate(names):
        Image.new("RGB", (40 + i, 30), (20 * i, 100, 200)).save(folder / name)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    return folder


CAPTION_FILES = {
    "flickr8k": ("captions.txt", "a.jpg#0\ta dog\na.jpg#1\ta brown dog running\nb.jpg#0\ta cat\n"
                 "c.jpg#0\ta red car\nghost.jpg#0\tno image\nbroken.jpg#0\tbroken\n"),
    "csv": ("captions.csv", "image,caption\na.jpg,a dog\na.jpg,a brown dog running\nb.jpg,a cat\n"
            "c.jpg,a red car\nghost.jpg,no image\n"),
    "coco": ("captions.json", json.dumps({
        "images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"},
                   {"id": 3, "file_name": "c.jpg"}, {"id": 4, "file_name": "ghost.jpg"}],
        "annotations": [{"image_id": 1, "caption": "a dog"},
                        {"image_id": 1, "caption": "a brown dog running"},
                        {"image_id": 2, "caption": "a cat"},
                        {"image_id": 3, "caption": "a red car"},
                        {"image_id": 4, "caption": "no image"}]})),
    "jsonl": ("captions.jsonl", '{"image": "a.jpg", "captions": ["a dog", "a brown dog running"]}\n'
              '{"image": "b.jpg", "captions": ["a cat"]}\n'
              '{"image": "c.jpg", "caption": "a red car"}\n'
              '{"image": "ghost.jpg", "captions": ["no image"]}\nnot json\n'),
}


@pytest.mark.parametrize("fmt", sorted(CAPTION_FILES))
def test_caption_formats_are_read_and_matched_to_the_folder(tmp_path, fmt):
    from stimuli.corpus import folder_corpus

    folder = _photos(tmp_path / "photos", ["a.jpg", "b.jpg", "c.jpg", "d.jpg"])
    name, text = CAPTION_FILES[fmt]
    (tmp_path / name).write_text(text)
    for given in (fmt, "auto"):
        corpus = folder_corpus(folder, tmp_path / name, given)
        assert corpus.ids == ["a.jpg", "b.jpg", "c.jpg"]
        assert corpus.caption(0) == "a brown dog running" and corpus.caption(0, "first") == "a dog"
        assert corpus.report["captions_without_image"] >= 1
        assert corpus.report["images_without_caption"] == 1  # d.jpg
        assert corpus.report["unreadable_files"] == 1
        assert corpus.images(32).render(2).shape == (32, 32, 3)


def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys):
    photos = _photos(tmp_path / "photos", ["a.jpg", "b.jpg"])
    (tmp_path / "other.csv").write_text("image,caption\nx.jpg,a dog\n")
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / "empty").mkdir()
    run = tmp_path / "run"
    cases = [
        (["--images", str(tmp_path / "empty"), "--captions", str(tmp_path / "other.csv")],
         "no readable image"),
        (["--images", str(photos), "--captions", str(tmp_path / "other.csv")], "matches no"),
        (["--images", str(photos), "--captions", str(tmp_path / "notes.txt")],
         "cannot tell its format"),
        (["--images", str(photos)], "go together"),
        (["--corpus-size", "8", "--k", "8"], "--k 8: needs 1 <= k <"),
        (["--corpus-size", "20", "--reference", "no-such-encoder"], "not a timm model"),
        (["--corpus-size", "8", "--max-overlap", "10"], "--max-overlap 10"),
    ]
    for argv, message in cases:
        assert main(["daf", "--run-dir", str(run), *PLANTED[:6], "--blind-rank", "10",
                     *argv]) in (1, 2), argv
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, (argv, err)
    assert not (run / "daf").exists()
    assert main(["daf", "--run-dir", str(run), "--caption-format", "xml"]) == 2
    with pytest.raises(UsageError, match="lexicon"):
        Lexicon.load(tmp_path / "notes.txt")


def test_offline_reference_weights_fail_in_seconds(monkeypatch):
    import time

    from interp.probes.encoders import load_reference

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", "/nonexistent-cache")
    start = time.perf_counter()
    with pytest.raises(ChromaError, match="not cached.*--reference-weights none"):
        load_reference("dinov2-vits14")
    assert time.perf_counter() - start < 10


def test_synthetic_captions_say_what_the_image_shows():
    from stimuli.corpus import synthetic_corpus

    corpus = synthetic_corpus(40)
    shapes = corpus.images(64)
    first = corpus.caption(0)
    assert corpus.ids[0] == "shapes/0" and corpus.ids[-1] == "stroop/19"
    assert "background" in first and len(corpus.captions[0]) == 3
    assert "the word" in corpus.caption(39)
    assert shapes.render(0).shape == (64, 64, 3)


@pytest.mark.slow
def test_the_atlas_has_a_probes_page_with_the_failure_cases(planted_run, tmp_path):
    page = probe_pages.probes_page(planted_run, "daf", tmp_path)
    index = (page.parent / "index.html").read_text()
    assert 'href="probes.html"' in index and "colour" in index
    sources = probe_pages.local_links(page)
    assert sum("/thumbs/" in s for s in sources) >= 21  # a query and its 20 neighbours at least
    assert all((page.parent / s).exists() for s in sources), sources
    assert page.read_text().count('class="case"') == min(24, len(Run(planted_run).daf_failures()))

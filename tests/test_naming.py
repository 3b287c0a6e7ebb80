"""`chromadissect naming` end to end on the tiny CLIP: tables, figures, cache, errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from interp import cli
from interp.models import load_model
from interp.naming import embeddings as naming_embed
from interp.naming.embeddings import EmbeddingCache, text_embeddings
from interp.naming.experiments import EXPERIMENTS, prompts
from interp.naming.report import template_slug
from interp.naming.step import Naming, write_experiment
from interp.rundir import RunDir
from stimuli import get_set

pytestmark = pytest.mark.slow  # builds real runs: `make test` runs it, `-m "not slow"` skips it

TINY = ["--model", "interp.models:tiny_clip", "--pretrained", "none"]


def naming_cli(run, *extra: str) -> int:
    return cli.main(["naming", "--run-dir", str(run), *TINY, "--samples-per-combo", "1",
                     "--limit", "24", "--batch-size", "16", "--workers", "0", *extra])


def read_csv(path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("naming_run")
    assert naming_cli(path) == 0
    return path


def test_writes_all_five_tables_and_figures(run):
    out = RunDir(run).naming
    for n, exp in EXPERIMENTS.items():
        for stem in (f"exp{n}{v.suffix}" for v in exp.variants):
            assert (out / f"{stem}.md").read_text().startswith(f"# Experiment {n}")
            rows = read_csv(out / f"{stem}.csv")
            pct = [c for c in rows[0] if c.endswith("_pct")]
            assert pct and not any(c.startswith("published_") for c in pct)  # not RN50/openai
            assert all({f"{c}_lo", f"{c}_hi"} <= set(rows[0]) for c in pct)
            assert "n_images" in rows[0]
            assert all((out / f"confusion_{stem}_{template_slug(t)}.png").exists()
                       for t in exp.templates)
    assert sorted(p.stem for p in out.glob("exp5*.csv")) == ["exp5", "exp5_colored_bg"]
    assert len(list(out.glob("confusion_*.png"))) == 1 + 2 + 5 + 1 + 2
    grid = read_csv(out / "exp1.csv")
    assert sum(int(r["n_images"]) for r in grid) == 24
    for r in (r for r in grid if int(r["n_images"])):
        total = float(r["background_pct"]) + float(r["object_pct"]) + float(r["other_pct"])
        assert total == pytest.approx(100, abs=0.02)
    total = read_csv(out / "exp5.csv")[-1]
    assert total["color"] == "TOTAL"
    assert sum(float(total[c]) for c in ("font_pct", "written_pct", "background_pct",
                                         "none_pct")) == pytest.approx(100, abs=0.02)
    assert len(read_csv(out / "exp3.csv")) == 5
    every, coloured = read_csv(out / "exp5.csv")[-1], read_csv(out / "exp5_colored_bg.csv")[-1]
    assert int(every["n_images"]) == 24 >= int(coloured["n_images"])
    assert read_csv(out / "exp3.csv")[0]["font_pct"] == every["font_pct"]  # Table 3 row 1
    assert "all backgrounds (white included)" in (out / "exp5.md").read_text()
    assert "coloured backgrounds only" in (out / "exp5_colored_bg.md").read_text()
    assert "95% Wilson intervals" in (out / "exp5.md").read_text()


def test_predictions_are_the_argmax_of_cosine_similarity(run):
    loaded = load_model("interp.models:tiny_clip", "none")
    stroop = get_set("stroop", samples_per_combo=1, image_size=64)
    naming = Naming(loaded, {"stroop": stroop}, EmbeddingCache(RunDir(run).naming_embeddings),
                    limit=5, batch_size=16, workers=0)
    template = EXPERIMENTS[4].templates[0]
    images = torch.from_numpy(np.stack([stroop.render(i) for i in range(5)]))
    with torch.no_grad():
        x = naming_embed.encode_batch(loaded, images, "float32")
        tokens = loaded.tokenizer(prompts(template))
        t = torch.nn.functional.normalize(loaded.clip.encode_text(tokens), dim=-1)
    expect = (x @ t.T).argmax(dim=1).numpy()
    np.testing.assert_array_equal(naming.predict("stroop", template), expect)
    np.testing.assert_allclose(text_embeddings(loaded, template).numpy(), t.numpy(), atol=1e-6)


def test_new_experiment_reuses_cached_embeddings(run, monkeypatch):
    calls, texts = [], []
    real, real_text = naming_embed.encode_batch, naming_embed.text_embeddings
    monkeypatch.setattr(naming_embed, "encode_batch", lambda *a: calls.append(1) or real(*a))
    monkeypatch.setattr(naming_embed, "text_embeddings",
                        lambda *a: texts.append(1) or real_text(*a))
    assert naming_cli(run, "--experiments", "2,4") == 0
    assert calls == [] and texts == []  # images and prompts both cached in the run
    # batches of 16: rows 0-15 cached whole, 16-23 of the second batch; 40 images need the
    # second batch whole (encoded again, from its start) and 32-39 of the third
    assert naming_cli(run, "--experiments", "1", "--limit", "40") == 0
    assert len(calls) == 2
    assert naming_cli(run, "--experiments", "1", "--limit", "40") == 0
    assert len(calls) == 2


def test_published_figures_stand_beside_measured_ones(run, tmp_path):
    loaded = load_model("interp.models:tiny_clip", "none")
    sets = {"stroop-white": get_set("stroop-white", samples_per_combo=1, image_size=64)}
    naming = Naming(loaded, sets, EmbeddingCache(RunDir(run).naming_embeddings), limit=24,
                    batch_size=16, workers=0)
    write_experiment(tmp_path, 4, naming, show_published=True)
    rows = {r["color"]: r for r in read_csv(tmp_path / "exp4.csv")}
    assert rows["TOTAL"]["published_font_pct"] == "16.72"
    assert rows["white"]["published_font_pct"] == ""  # the paper has no white row
    assert "(paper 81.11%)" in (tmp_path / "exp4.md").read_text()
    assert float(rows["TOTAL"]["font_pct_lo"]) <= float(rows["TOTAL"]["font_pct"])


def test_published_figures_stand_beside_the_all_backgrounds_variant_only(run, tmp_path):
    loaded = load_model("interp.models:tiny_clip", "none")
    sets = {"stroop": get_set("stroop", samples_per_combo=1, image_size=64)}
    naming = Naming(loaded, sets, EmbeddingCache(RunDir(run).naming_embeddings), limit=24,
                    batch_size=16, workers=0)
    paths = write_experiment(tmp_path, 5, naming, show_published=True)
    assert [p.name for p in paths] == ["exp5.csv", "exp5_colored_bg.csv"]
    every = {r["color"]: r for r in read_csv(tmp_path / "exp5.csv")}
    assert every["TOTAL"]["published_font_pct"] == "2.35"
    assert every["white"]["published_written_pct"] == "1.73"
    assert not any(c.startswith("published_") for c in read_csv(paths[1])[0])
    text = (tmp_path / "exp5_colored_bg.md").read_text()
    assert "(paper" not in text and "`exp5.md`" in text
    assert "(paper 2.35%)" in (tmp_path / "exp5.md").read_text()


def test_refuses_a_model_without_text_tower(tmp_path, capsys):
    code = cli.main(["naming", "--run-dir", str(tmp_path), "--model",
                     "torchvision.models:resnet18", "--pretrained", "none"])
    assert code == 1
    assert "no text tower" in capsys.readouterr().err
    assert not RunDir(tmp_path).naming.exists()


def test_refuses_bad_experiment_numbers(tmp_path, capsys):
    assert naming_cli(tmp_path, "--experiments", "1,7") == 2
    assert "--experiments" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["naming", "analyze", "atlas", "attribute"])
def test_refuses_another_model_than_run_json_records(run, capsys, command):
    code = cli.main([command, "--run-dir", str(run), "--model", "RN50", "--pretrained", "none"])
    assert code == 2
    err = capsys.readouterr().err
    assert "run.json records --model interp.models:tiny_clip, this command asks RN50" in err
    assert err.count("error") == 1 and "unrecognized arguments" not in err


def test_the_library_refuses_another_model_too(run):
    from interp.errors import ChromaError
    from interp.naming import naming

    with pytest.raises(ChromaError, match="model_settings.model"):
        naming(run, model={"model": "RN50", "pretrained": "none"})


def test_attribute_explains_the_answers_of_the_runs_naming(run, monkeypatch):
    calls = []
    real = naming_embed.encode_batch
    monkeypatch.setattr(naming_embed, "encode_batch", lambda *a: calls.append(1) or real(*a))
    # no --limit / --samples-per-combo: those of the run's naming of experiment 4 (24, 1)
    code = cli.main(["attribute", "--run-dir", str(run), "--experiment", "4", "--errors", "1",
                     "--methods", "grad_cam", "--workers", "0"])
    assert code == 0 and calls == []
    entries = json.loads(RunDir(run).attributions_index.read_text())["naming"]
    assert len(entries) == 1 and entries[0]["predicted"] != entries[0]["correct"]

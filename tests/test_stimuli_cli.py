"""`chromadissect stimuli`: preview grid, byte-identical exports, one-line usage errors."""

from __future__ import annotations

import csv

import numpy as np
from PIL import Image

from interp.cli import main
from stimuli import get_set


def test_preview_writes_a_labelled_grid(tmp_path):
    out = tmp_path / "grid.png"
    assert main(["stimuli", "stroop", "--preview", str(out), "--count", "6",
                 "--image-size", "64"]) == 0
    grid = np.array(Image.open(out))
    assert grid.shape[1] == 3 * (64 + 6) + 6  # 3 columns for 6 tiles
    assert grid.shape[0] > 2 * (64 + 6)  # 2 rows plus caption lines under each tile
    # The first tile is image 0 of the set, pasted at the top left.
    assert (grid[6:70, 6:70] == get_set("stroop", image_size=64).render(0)).all()
    assert (grid[71:120, 6:70] == 0).all(axis=2).any()  # black caption text under the tile


def test_export_is_byte_identical_across_runs(tmp_path):
    args = ["stimuli", "shapes", "--limit", "12", "--image-size", "48", "--samples-per-combo",
            "2"]
    assert main([*args, "--export", str(tmp_path / "a")]) == 0
    assert main([*args, "--export", str(tmp_path / "b")]) == 0
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert len(files) == 13 and "labels.csv" in files
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    rows = list(csv.DictReader((tmp_path / "a" / "labels.csv").read_text().splitlines()))
    s = get_set("shapes", limit=12, image_size=48, samples_per_combo=2)
    lab = s.labels()
    assert [r["file"] for r in rows] == [f"{i:06d}.png" for i in range(12)]
    assert rows[5]["shape"] == s.label_names["shape"][lab["shape"][5]]
    assert float(rows[5]["x"]) == float(f"{lab['x'][5]:.6g}")
    assert (np.array(Image.open(tmp_path / "a" / "000005.png")) == s.render(5)).all()


def test_summary_without_preview_or_export(capsys):
    assert main(["stimuli", "stroop-white", "--samples-per-combo", "1"]) == 0
    out = capsys.readouterr().out
    assert '"images": 90' in out and '"combinations": 90' in out


def test_bad_set_name_exits_2_with_one_line(capsys):
    assert main(["stimuli", "colours"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "unknown stimulus set 'colours'" in lines[0]
    assert "shapes, stroop, stroop-white, words, natural" in lines[0]


def test_bad_option_value_exits_2(capsys):
    assert main(["stimuli", "shapes", "--limit", "0"]) == 2
    assert main(["stimuli", "natural", "--natural-dir", "/nonexistent/photos"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "not a folder" in err[1]


def test_run_dir_uses_the_runs_stimulus_spec(tmp_path, capsys):
    from interp.rundir import RunDir

    spec = get_set("shapes", samples_per_combo=2, image_size=40, seed=3, limit=5).spec()
    RunDir(tmp_path / "run").update({"stimuli": {"shapes": spec}})
    assert main(["stimuli", "shapes", "--run-dir", str(tmp_path / "run"), "--export",
                 str(tmp_path / "out")]) == 0
    exported = sorted((tmp_path / "out").glob("*.png"))
    assert len(exported) == 5
    want = get_set("shapes", samples_per_combo=2, image_size=40, seed=3).render(4)
    assert (np.array(Image.open(exported[4])) == want).all()
    assert main(["stimuli", "stroop", "--run-dir", str(tmp_path / "run")]) == 1
    assert "no stimulus set 'stroop'" in capsys.readouterr().err

"""The atlas's ablation views: ablation.html, the index's Ablations section and the unit pages'
effect of silencing a unit alone, from RUN/ablation/summary.csv (viz/ablation.py)."""

from __future__ import annotations

from pathlib import Path

from viz import ablation, rundata
from viz.pages import Site
from viz.synthetic import make_synthetic_run

HEADER = ("selection,mode,folder,unit,n_units,units_per_block,metric,label,images,base_pct,"
          "ablated_pct,delta,control_mean,control_lo,control_hi,p,draws,dose_10,dose_25,dose_50")
SUMMARY = [  # a selection silenced together (with doses), two units each alone (no doses)
    "type=color_word,zero,type-color_word-zero,,12,layer1.0 2; layer2.0 10,exp4.written,"
    "exp. 4: % written word,40,50.0,37.5,-12.5,0.4,-2.5,2.5,0.2,4,-1.25,-5.0,-10.0",
    "type=color_word,zero,type-color_word-zero,,12,layer1.0 2; layer2.0 10,exp1.object,"
    "exp. 1: % object,40,20.0,22.5,2.5,0.0,-2.5,2.5,0.6,4,0.0,0.0,2.5",
    "type=color_word,zero,type-color_word-zero,,12,layer1.0 2; layer2.0 10,exp3.bare.font,"
    "exp. 3 `{}`: % font,40,20.0,20.0,0.0,0.0,0.0,0.0,1.0,4,0.0,0.0,0.0",
    "\"layer1.0:1,layer2.0:7\",mean,layer1.0-1_layer2.0-7-mean-each,layer1.0:1,1,layer1.0 1,"
    "exp4.written,exp. 4: % written word,40,50.0,45.0,-5.0,0.0,-2.5,2.5,0.25,3,,,",
    "\"layer1.0:1,layer2.0:7\",mean,layer1.0-1_layer2.0-7-mean-each,layer2.0:7,1,layer2.0 1,"
    "exp4.written,exp. 4: % written word,40,50.0,57.5,7.5,0.0,-2.5,2.5,0.25,3,,,",
]
BLOCKS = {"layer1.0": [2, "layer1.0"], "layer2.0": [10, "layer2.0"]}


def write_summary(run: Path, lines: list[str]) -> Path:
    path = run / "ablation" / "summary.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return path


def test_reader_turns_a_hand_written_summary_into_sections_lines_and_unit_tables(tmp_path):
    assert ablation.read_summary(tmp_path) is None
    assert ablation.index_lines(None) == [] and ablation.unit_effects(None) == {}
    write_summary(tmp_path, SUMMARY)
    (tmp_path / "ablation" / "type-color_word-zero").mkdir()
    (tmp_path / "ablation" / "type-color_word-zero" / "effects.png").write_bytes(b"png")
    table = ablation.read_summary(tmp_path)
    context = ablation.ablation_context(tmp_path, table, BLOCKS)
    together, each = context["sections"]
    assert together["selection"] == "type=color_word" and together["mode"] == "zero"
    assert together["describe"] == "12 units silenced together (per block: layer1.0 2; " \
                                   "layer2.0 10)"
    assert together["figure"] == "../ablation/type-color_word-zero/effects.png"
    assert together["head"][-3:] == ["10%", "25%", "50%"] and "unit" not in together["head"]
    # headline metrics only, in report.md's order (exp. 3 is not one)
    assert [r["cells"] for r in together["rows"]] == [
        ["exp. 4: % written word", "50.0", "37.5", "-12.5", "-2.5 … +2.5", "0.200", "4",
         "-1.2", "-5.0", "-10.0"],
        ["exp. 1: % object", "20.0", "22.5", "+2.5", "-2.5 … +2.5", "0.600", "4", "+0.0", "+0.0",
         "+2.5"]]
    assert together["floor"] == "0.200" and not context["report"]
    assert each["describe"] == "2 units, each silenced alone" and each["figure"] is None
    assert each["head"][0] == "unit" and not any(h.endswith("%") and h[0].isdigit()
                                                 for h in each["head"])
    assert [(r["unit"], r["href"], r["cells"][3]) for r in each["rows"]] == [
        ("layer1.0:1", "units/layer1.0/1.html", "-5.0"),
        ("layer2.0:7", "units/layer2.0/7.html", "+7.5")]
    lines = ablation.index_lines(table)
    assert [(x["selection"], x["mode"]) for x in lines] == [
        ("type=color_word", "zero"), ("layer1.0:1,layer2.0:7", "mean")]
    assert lines[0]["written"] == "-12.5 points, p 0.200"
    assert lines[1]["written"] == "+7.5 points (layer2.0:7, largest of 2), p 0.250"
    effects = ablation.unit_effects(table)
    assert set(effects) == {"layer1.0:1", "layer2.0:7"}
    assert effects["layer2.0:7"][1:] == [["layer1.0:1,layer2.0:7 / mean",
                                          "exp. 4: % written word", "+7.5", "0.250", "3"]]


def test_pages_say_when_there_is_no_ablation_and_show_a_units_effect_when_there_is(tmp_path):
    run = make_synthetic_run(tmp_path / "run", {"layer1.0": 2, "layer2.0": 10})
    units = rundata.load_units(run)
    by_block = rundata.by_block(units)

    def pages() -> tuple[str, str, str]:
        site = Site(run, rundata.block_sizes(units), 10)
        return (site.index_page(units, []),
                site.unit_page(by_block["layer2.0"][7], by_block["layer2.0"], set()),
                site.unit_page(by_block["layer2.0"][6], by_block["layer2.0"], set()))

    index, unit, other = pages()
    assert "no ablation results in this run" in index and 'href="ablation.html"' not in index
    assert "silencing this unit alone" not in unit
    write_summary(run, SUMMARY)
    index, unit, other = pages()
    assert 'href="ablation.html"' in index and "no ablation results" not in index
    assert "<code>type=color_word</code> · zero" in index and "-12.5 points, p 0.200" in index
    assert "Naming effect of silencing this unit alone" in unit
    assert "<td>+7.5</td><td>0.250</td><td>3</td>" in unit
    assert "silencing this unit alone" not in other

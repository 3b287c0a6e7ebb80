"""The atlas's Probes page (probes.html): DAF's failure types and failure cases (query image,
CLIP neighbours beside reference neighbours, captions, overlap), from RUN/daf/; TCAC's change
per transform and its cases (each image before and after, with its top captions), from
RUN/tcac/."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from interp.probes.tcac_report import ALPHA
from interp.rundir import RunDir

#: Failure cases shown (those the daf step drew thumbnails for, at most).
SHOWN = 24


def has_probes(run: Path) -> bool:
    run = RunDir(run)
    return (run.daf / "failure_types.csv").exists() or (run.tcac / "summary.csv").exists()


def daf_context(run: Path, info: dict) -> dict | None:
    """What the template shows of RUN/daf/ (`info`: run.json's `daf` section), or None without
    a DAF result."""
    out = RunDir(run).daf
    if not (out / "failure_types.csv").exists():
        return None
    with open(out / "failure_types.csv", newline="") as f:
        table = list(csv.reader(f))
    cases = []
    for line in (out / "failures.jsonl").read_text().splitlines()[:SHOWN]:
        case = json.loads(line)
        ids = [case["query"], *(n["index"] for n in case["clip_only"] + case["reference_only"])]
        if all((out / "thumbs" / f"{i}.jpg").exists() for i in ids):
            cases.append(case)
    warnings = [f"the {side} encoder has random init (untrained weights): a control, not a "
                "finding about a trained model" for side in ("clip", "reference")
                if info.get(side, {}).get("random_init")]
    return {"table": table, "info": info, "cases": cases, "warnings": warnings,
            "results": info.get("results", {}), "settings": info.get("settings", {})}


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _num(text: str) -> str:
    """A CSV number as the page shows it: 3 decimals (empty: a dash)."""
    return f"{float(text):.3f}" if text not in ("", None) else "—"


def tcac_context(run: Path, info: dict) -> dict | None:
    """What the template shows of RUN/tcac/ (`info`: run.json's `tcac` section), or None
    without a TCAC result: the summary, the significant category shifts and, per transform,
    the cases the tcac step drew thumbnails for."""
    out = RunDir(run).tcac
    if not (out / "summary.csv").exists():
        return None
    summary = _rows(out / "summary.csv")
    table = [["transform", "images", "mean Δ", "95% CI", "Δ − identity", "own best caption "
              "leaves the top"]]
    table += [[r["transform"], r["n_images"], _num(r["mean_delta"]),
               f"[{_num(r['ci_low'])}, {_num(r['ci_high'])}]", _num(r["diff_identity"]),
               _num(r["own_best_leaves_top"])] for r in summary]
    shifts = [["transform", "category", "images", "effect", "95% CI", "q", "expected"]]
    shifts += [[r["transform"], r["category"], r["n_images"], _num(r["effect"]),
                f"[{_num(r['ci_low'])}, {_num(r['ci_high'])}]", _num(r["q"]), r["expected"]]
               for r in _rows(out / "failure_types.csv")
               if r["transform"] != "identity" and r["q"] and float(r["q"]) < ALPHA]
    show = int(info.get("settings", {}).get("show", 0) or 0)
    transforms = [{"name": r["transform"], "row": r,
                   "params": info.get("transform_params", {}).get(r["transform"], {}),
                   "cases": _tcac_cases(out, r["transform"], show)}
                  for r in summary if r["transform"] != "identity"]
    warnings = ["the CLIP model has random init (untrained weights): a control, not a finding "
                "about a trained model"] if info.get("models", {}).get("clip", {}).get(
                    "random_init") else []
    return {"table": table, "shifts": shifts if len(shifts) > 1 else [], "info": info,
            "transforms": transforms, "warnings": warnings, "alpha": ALPHA}


def _tcac_cases(out: Path, name: str, show: int) -> list[dict]:
    """The first `show` cases of a transform whose thumbnails (before and after) exist."""
    path = out / f"{name}.jsonl"
    lines = path.read_text().splitlines()[:show] if path.exists() else []
    cases = [_tcac_case(json.loads(line)) for line in lines]
    return [c for c in cases if (out / "thumbs" / f"{c['index']}.jpg").exists()
            and (out / "thumbs" / f"{name}-{c['index']}.jpg").exists()]


def _tcac_case(case: dict) -> dict:
    """A case with each top caption marked: own (one of the image's captions), and whether it
    stays in the top after the transform (before) or is new to it (after)."""
    own = set(case["own_captions"])
    before = {c["caption"] for c in case["before"]}
    after = {c["caption"] for c in case["after"]}
    return {**case,
            "before": [{**c, "own": c["caption"] in own, "moved": c["caption"] not in after}
                       for c in case["before"]],
            "after": [{**c, "own": c["caption"] in own, "moved": c["caption"] not in before}
                      for c in case["after"]]}


def probes_page(site) -> str:
    """probes.html for the Site of a run."""
    return site.render("probes.html", "", {"page": "probes"}, model=site.model_name(),
                       daf=daf_context(site.run, site.info.get("daf", {})),
                       tcac=tcac_context(site.run, site.info.get("tcac", {})))

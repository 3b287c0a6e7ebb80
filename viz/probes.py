"""The atlas's Probes page (probes.html): DAF's failure types and failure cases (query image,
CLIP neighbours beside reference neighbours, captions, overlap), from RUN/daf/."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from interp.rundir import RunDir

#: Failure cases shown (those the daf step drew thumbnails for, at most).
SHOWN = 24


def has_probes(run: Path) -> bool:
    return (RunDir(run).daf / "failure_types.csv").exists()


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


def probes_page(site) -> str:
    """probes.html for the Site of a run."""
    return site.render("probes.html", "", {"page": "probes"}, model=site.model_name(),
                       daf=daf_context(site.run, site.info.get("daf", {})))

"""The atlas's Probes page for the probes' tests: a synthetic run given a probe's results, and the
local files the page links to."""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path


def probes_page(source: Path, step: str, tmp_path: Path) -> Path:
    """Build the atlas of a small synthetic run holding `source`'s RUN/{step}/ and its run.json
    section; returns its probes.html."""
    from interp.rundir import RunDir
    from viz.atlas import build_atlas
    from viz.synthetic import make_synthetic_run

    run = make_synthetic_run(tmp_path / "site", {"layer1.0": 2})
    shutil.copytree(source / step, run / step)
    RunDir(run).update({step: json.loads((source / "run.json").read_text())[step]})
    build_atlas(run, cards_per_type=0, thumb=10)
    return run / "atlas" / "probes.html"


def local_links(page: Path) -> list[str]:
    """The images and the `../` links of a page, in order."""
    found: list[str] = []

    class Links(HTMLParser):
        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "img":
                found.append(attrs["src"])
            if tag == "a" and attrs.get("href", "").startswith("../"):
                found.append(attrs["href"])

    Links().feed(page.read_text())
    return found

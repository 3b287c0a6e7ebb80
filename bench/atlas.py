"""Atlas build time for RN50's 15,104 units on a synthetic run (no model); JSON on the last line.

Times the parts separately: figures, sprite sheets + block and unit pages, and unit cards
(per card; crops are unavailable on a synthetic run, so a real card costs a little more).

    .venv/bin/python bench/atlas.py --nf-size 32 --cards-per-type 1
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from interp.rundir import RunDir  # noqa: E402
from viz import atlas, rundata  # noqa: E402
from viz.synthetic import RN50_BLOCKS, make_synthetic_run  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nf-size", type=int, default=32, help="NF side in the synthetic run")
    p.add_argument("--cards-per-type", type=int, default=1)
    p.add_argument("--dir", type=Path, default=None, help="keep the run here (default: temp)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = make_synthetic_run(args.dir or Path(tmp) / "run", RN50_BLOCKS,
                                 nf_size=args.nf_size, top_n=100)
        units = rundata.load_units(run)
        chosen = atlas.select_card_units(units, args.cards_per_type)
        start = time.perf_counter()
        atlas.render_cards(run, chosen)
        cards_s = time.perf_counter() - start
        start = time.perf_counter()
        atlas.build_atlas(run, cards_per_type=args.cards_per_type)  # cards already there
        build_s = time.perf_counter() - start
        files = [f for f in RunDir(run).atlas.rglob("*") if f.is_file()]
        print(json.dumps({
            "units": len(units), "blocks": len(rundata.block_sizes(units)),
            "nf_size": args.nf_size, "build_without_cards_s": round(build_s, 1),
            "cards": len(chosen), "cards_s": round(cards_s, 1),
            "card_s_each": round(cards_s / max(len(chosen), 1), 2),
            "total_s": round(build_s + cards_s, 1), "files": len(files),
            "atlas_mb": round(sum(f.stat().st_size for f in files) / 2**20, 1),
            "largest_page_kb": round(max(f.stat().st_size for f in files
                                         if f.suffix == ".html") / 1024, 1),
        }))


if __name__ == "__main__":
    main()

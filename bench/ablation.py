"""Cost of one ablated condition against the bare image-tower forward pass, per image.

Usage: .venv/bin/python bench/ablation.py [--model RN50] [--pretrained none] [--images 32]
       [--batch-size 32] [--conditions 4] [--units 256] [--device cpu] [--dtype float32]
The ablated side is `interp.ablation.forward.ablated_answers` as the ablate step calls it: the
stroop images rendered once per batch, then per condition one image-tower forward with
`--units` units of the last block silenced (a `trace` hook), the answers of the five Stroop
prompts from their cached embeddings. Each mode runs `--conditions` conditions (a selection and
random draws of as many units); resample adds one clean forward of the donor images per batch,
stopped after the last ablated block and shared by every condition.
Ratio = (seconds per condition and image) / (seconds per bare forward and image); goal about 1.
Text encodings during the ablation are counted (goal 0: the text side comes from the cache).
Bare = normalisation + image tower on the same pre-rendered batch, measured before and after
and averaged. Wall and CPU-time ratios (CPU time: robust on a shared machine). The last line is
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.naming import Clock, bare_times  # noqa: E402
from interp import embeddings  # noqa: E402
from interp.ablation.forward import ablated_answers  # noqa: E402
from interp.ablation.selection import Condition  # noqa: E402
from interp.models import load_model, unit_counts  # noqa: E402
from interp.naming.embeddings import text_embeddings  # noqa: E402
from interp.naming.experiments import EXPERIMENTS  # noqa: E402
from stimuli import get_set  # noqa: E402


def conditions(block: int, n_units: int, units: int, count: int) -> list[Condition]:
    rng = np.random.default_rng(0)
    return [Condition(f"c{i}", "control", tuple(f"{block}:{u}" for u in
                                                sorted(rng.choice(n_units, units, False))))
            for i in range(count)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="RN50")
    p.add_argument("--pretrained", default="none")
    p.add_argument("--images", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--conditions", type=int, default=4)
    p.add_argument("--units", type=int, default=256)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32")
    args = p.parse_args()

    loaded = load_model(args.model, args.pretrained, device=args.device)
    stim = get_set("stroop", samples_per_combo=1, image_size=loaded.image_size)
    texts = {t: text_embeddings(loaded, t, args.dtype).cpu() for t in EXPERIMENTS[3].templates}
    block, n_units = list(unit_counts(loaded).items())[-1]
    conds = conditions(block, n_units, min(args.units, n_units), args.conditions)
    encoded = {"n": 0}
    original = embeddings.TextTower.encode

    def counting(self, texts, dtype="float32"):
        encoded["n"] += 1
        return original(self, texts, dtype)

    embeddings.TextTower.encode = counting
    before = bare_times(loaded, stim, args.images, args.batch_size, args.dtype)
    result = {"model": f"{args.model} ({args.pretrained})", "device": args.device,
              "images": args.images, "batch_size": args.batch_size, "conditions": len(conds),
              "block": block, "units_per_condition": len(conds[0].units)}
    modes = {}
    for mode in ("zero", "mean", "resample"):
        fill = {block: np.ones(n_units, np.float32)}
        clock = Clock()
        ablated_answers(loaded, stim, args.images, conds, mode, texts, fill=fill,
                        batch_size=args.batch_size, dtype=args.dtype, workers=0)
        modes[mode] = clock.read()
    after = bare_times(loaded, stim, args.images, args.batch_size, args.dtype)
    bare = [(b + a) / 2 for b, a in zip(before, after, strict=True)]
    result["bare_s_per_image"] = round(bare[0] / args.images, 5)
    for mode, (wall, cpu) in modes.items():
        per = [wall / len(conds), cpu / len(conds)]
        result[f"{mode}_s_per_condition_image"] = round(per[0] / args.images, 5)
        result[f"{mode}_ratio"] = round(per[0] / bare[0], 3)
        result[f"{mode}_cpu_time_ratio"] = round(per[1] / bare[1], 3)
    result["text_encodings_during_ablation"] = encoded["n"]
    for key, value in result.items():
        print(f"{key:>32}: {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()

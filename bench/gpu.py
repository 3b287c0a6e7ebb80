"""The measuring steps of bench/gpu.sh: `bare`, `extract` and `report` (one JSON line of every
figure). Each step prints its results as lines `GPUBENCH {json}` as soon as it has them, so a
step stopped by its time limit still leaves what it finished; `report` reads them back.

    python3 bench/gpu.py bare --model RN50 --batch-size 250 --device cuda
    python3 bench/gpu.py extract --run-dir /tmp/r --device cuda --dtype bfloat16 --compile
    python3 bench/gpu.py report --work DIR      # standard library only

`bare` times the plain forward of the untrained model (no hooks) on one fixed batch in each mode:
fp32 (NCHW), bf16 (autocast, NCHW), bf16_channels_last, and bf16_channels_last_compiled
(`torch.compile`, as the extraction runs with `--compile`). `extract` runs `Run.extract` and
samples the store's completion marks every second, from which `report` takes the steady rate
(after the first chunk landed, so without model loading and compilation).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import threading
import time
from pathlib import Path

# bench/stimuli.py is named like the stimuli package: keep bench/ off the import path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

MARK = "GPUBENCH "
PAPER_IMAGES = 935_000  # shapes 440,000 + Stroop 495,000
MODES = ("fp32", "bf16", "bf16_channels_last", "bf16_channels_last_compiled")


def emit(**record) -> None:
    print(MARK + json.dumps(record), flush=True)


# --- bare forward ------------------------------------------------------------------------------

def bare(args: argparse.Namespace) -> None:
    import torch

    from interp.inputs import autocast, convert_4d, normalize_hwc
    from interp.models import load_model, resolve_device

    device = resolve_device(args.device)
    loaded = load_model(args.model, "none", device=device)
    emit(torch=torch.__version__, device_name=_device_name(device),
         host_cores=os.cpu_count(), model=args.model, batch_size=args.batch_size,
         image_size=loaded.image_size)
    images = torch.randint(0, 256, (args.batch_size, loaded.image_size, loaded.image_size, 3),
                           dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    x = normalize_hwc(images.to(device), loaded.mean, loaded.std).permute(0, 3, 1, 2)
    for mode in args.modes.split(","):
        if mode not in MODES:
            raise SystemExit(f"unknown mode {mode!r}; modes: {', '.join(MODES)}")
        fmt = torch.channels_last if "channels_last" in mode else torch.contiguous_format
        dtype = "float32" if mode == "fp32" else "bfloat16"
        convert_4d(loaded.visual, fmt)
        fn = torch.compile(loaded.visual) if mode.endswith("_compiled") else loaded.visual
        batch = x.contiguous(memory_format=fmt)
        start = time.perf_counter()
        with torch.inference_mode(), autocast(device, dtype):
            for _ in range(args.warmup):
                fn(batch)
            _sync(device)
            warm = time.perf_counter() - start
            start = time.perf_counter()
            for _ in range(args.batches):
                fn(batch)
            _sync(device)
        seconds = time.perf_counter() - start
        emit(bare_mode=mode, img_s=round(args.batches * args.batch_size / seconds, 1),
             seconds=round(seconds, 3), warmup_s=round(warm, 2))


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _device_name(device) -> str:
    import platform

    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()})"


# --- extraction ---------------------------------------------------------------------------------

def completed_images(store: Path) -> dict[str, int]:
    """Images whose chunk carries its completion mark, per set of `store` (activations.zarr):
    a mark's chunk file exists only once it was set (standard library only)."""
    done = {}
    for meta in sorted(store.glob("*/zarr.json")):
        attrs = json.loads(meta.read_text()).get("attributes", {})
        if "chunk_images" not in attrs:
            continue
        marks = meta.parent / "complete" / "c"
        count = sum(p.name.isdigit() for p in marks.iterdir()) if marks.is_dir() else 0
        done[meta.parent.name] = min(count * attrs["chunk_images"], attrs["n_images"])
    return done


def extract(args: argparse.Namespace) -> None:
    import torch

    from interp.api import Run
    from interp.models import resolve_device

    store = Path(args.run_dir) / "activations.zarr"
    stop = threading.Event()
    start = time.perf_counter()

    def sample() -> None:
        while not stop.wait(1.0):
            with contextlib.suppress(OSError, ValueError):  # a file being written
                emit(progress=[round(time.perf_counter() - start, 2),
                               sum(completed_images(store).values())])

    emit(device_name=_device_name(resolve_device(args.device)), torch=torch.__version__,
         host_cores=os.cpu_count())
    threading.Thread(target=sample, daemon=True).start()
    options = {"model": args.model, "pretrained": "none", "sets": args.sets.split(","),
               "samples_per_combo": args.samples_per_combo, "limit": args.limit,
               "batch_size": args.batch_size, "device": args.device, "dtype": args.dtype,
               "compile": args.compile, "workers": args.workers}
    Run(args.run_dir).extract(**{k: v for k, v in options.items() if v is not None})
    seconds = time.perf_counter() - start
    stop.set()
    timings = json.loads((Path(args.run_dir) / "run.json").read_text())["timings"]["extract"]
    done = completed_images(store)
    emit(progress=[round(seconds, 2), sum(done.values())])
    emit(extract_done={"seconds": round(seconds, 2), "images": sum(done.values()),
                       "sets": timings, "options": options})


# --- report -------------------------------------------------------------------------------------

def records(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(MARK):
            with contextlib.suppress(ValueError):  # a line cut by a time limit
                out.append(json.loads(line[len(MARK):]))
    return out


def steady_rate(progress: list[list[float]]) -> float | None:
    """img/s between the first sample with a completed chunk and the last sample (so without
    loading and compiling); None with too few samples."""
    started = [p for p in progress if p[1] > 0]
    if len(started) < 2 or started[-1][0] - started[0][0] < 2 or started[-1][1] == started[0][1]:
        return None
    (t0, n0), (t1, n1) = started[0], started[-1]
    return round((n1 - n0) / (t1 - t0), 1)


def pytest_counts(path: Path) -> dict:
    text = path.read_text(errors="replace") if path.is_file() else ""
    lines = [ln for ln in text.splitlines() if re.search(r"\d+ (passed|failed|skipped|error)", ln)]
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|errors?)",
                                                lines[-1])} if lines else {}
    if not counts:  # stopped by its time limit: count the per-test lines of -v
        for outcome in re.findall(r"::\S+ (PASSED|FAILED|SKIPPED|ERROR)", text):
            counts[outcome.lower()] = counts.get(outcome.lower(), 0) + 1
        counts["unfinished"] = True
    failed = sorted(set(re.findall(r"^(?:FAILED|ERROR) (\S+)", text, flags=re.M)))
    return {**counts, **({"failed_tests": failed[:20]} if failed else {})}


def report(args: argparse.Namespace) -> None:
    work = Path(args.work)
    stages = {r.pop("stage"): r for r in (json.loads(ln) for ln in
              (work / "stages.jsonl").read_text().splitlines() if ln.strip())} \
        if (work / "stages.jsonl").is_file() else {}
    out: dict = {"device": None, "dry_run": args.dry_run}
    smi = (work / "smi.out").read_text().strip().splitlines() if (work / "smi.out").is_file() \
        else []
    if smi:
        name, memory, driver = (s.strip() for s in (smi[0].split(",") + ["", ""])[:3])
        out.update({"device": name, "gpu_memory": memory, "driver": driver})
    bare_records = records(work / "bare.out")
    for r in bare_records[:1] + records(work / "extract.out")[:1]:
        out["device"] = out["device"] or r.get("device_name")
        out.setdefault("torch", r.get("torch"))
        out.setdefault("host_cores", r.get("host_cores"))
    out["total_s"] = args.total_s
    out["budget_s"] = args.budget_s
    out["stages"] = stages
    out["tests"] = pytest_counts(work / "tests.out")
    out["bare_img_s"] = {r["bare_mode"]: r["img_s"] for r in bare_records if "bare_mode" in r}
    out["bare_batch_size"] = next((r["batch_size"] for r in bare_records if "batch_size" in r),
                                  None)
    ext = records(work / "extract.out")
    progress = [r["progress"] for r in ext if "progress" in r]
    done = next((r["extract_done"] for r in ext if "extract_done" in r), None)
    images = progress[-1][1] if progress else 0
    wall = stages.get("extract", {}).get("seconds")
    extraction = {"finished": done is not None, "images": images, "wall_s": wall,
                  "img_s_end_to_end": round(images / wall, 1) if wall and images else None,
                  "img_s_steady": steady_rate(progress)}
    if done:
        extraction["sets"] = done["sets"]
        extraction["options"] = done["options"]
    util = _gpu_util(work / "util.csv")
    if util:
        extraction["gpu_util_pct"] = util
    out["extract"] = extraction
    compiled = out["bare_img_s"].get("bf16_channels_last_compiled")
    steady = extraction["img_s_steady"]
    if steady is None and done:  # too short for progress samples: the last set's own rate
        steady = list(done["sets"].values())[-1].get("images_per_s")
        extraction["img_s_steady"], extraction["steady_from"] = steady, "last set"
    elif steady is not None:
        extraction["steady_from"] = "completion marks after the first chunk"
    out["extract_over_bare_compiled"] = round(steady / compiled, 3) if steady and compiled \
        else None
    out["extract_over_bare_compiled_end_to_end"] = (
        round(extraction["img_s_end_to_end"] / compiled, 3)
        if extraction["img_s_end_to_end"] and compiled else None)
    out["paper_scale_s_estimate"] = round(PAPER_IMAGES / steady) if steady else None
    for probe in ("daf", "tcac"):
        run_json = work / probe / "run.json"
        entry = dict(stages.get(probe, {}))
        if run_json.is_file():
            recorded = json.loads(run_json.read_text()).get(probe, {})
            if "timings_s" in recorded:
                entry["timings_s"] = recorded["timings_s"]
        out[probe] = entry
    print(json.dumps(out), flush=True)


def _gpu_util(path: Path) -> dict | None:
    """Mean and max GPU utilisation (%) and max memory used (MiB) from nvidia-smi samples."""
    if not path.is_file():
        return None
    util, memory = [], []
    for line in path.read_text().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
            util.append(int(parts[0]))
            memory.append(int(parts[1]))
    if not util:
        return None
    return {"mean": round(sum(util) / len(util), 1), "max": max(util),
            "memory_used_mib_max": max(memory), "samples": len(util)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="step", required=True)
    b = sub.add_parser("bare", help="plain forward in each mode")
    b.add_argument("--model", default="RN50")
    b.add_argument("--batch-size", type=int, default=250)
    b.add_argument("--batches", type=int, default=20, help="timed batches per mode")
    b.add_argument("--warmup", type=int, default=3, help="untimed batches first (compiles)")
    b.add_argument("--device", default="cuda")
    b.add_argument("--modes", default=",".join(MODES))
    e = sub.add_parser("extract", help="Run.extract with progress samples")
    e.add_argument("--run-dir", required=True)
    e.add_argument("--model", default="RN50")
    e.add_argument("--sets", default="shapes,stroop")
    e.add_argument("--samples-per-combo", type=int, default=50)
    e.add_argument("--limit", type=int, default=None)
    e.add_argument("--batch-size", type=int, default=250)
    e.add_argument("--device", default="cuda")
    e.add_argument("--dtype", default="bfloat16")
    e.add_argument("--compile", action="store_true")
    e.add_argument("--workers", type=int, default=None)
    r = sub.add_parser("report", help="one JSON line from a gpu.sh work folder")
    r.add_argument("--work", required=True)
    r.add_argument("--total-s", type=float, default=None)
    r.add_argument("--budget-s", type=float, default=None)
    r.add_argument("--dry-run", action="store_true")
    args = p.parse_args()
    {"bare": bare, "extract": extract, "report": report}[args.step](args)


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Wheels for the lent GPU machine, which reaches no package registry: the packages its python3
# (3.12, with torch 2.11, torchvision, timm, numpy, ... already) lacks, downloaded here into the
# git-ignored .whl/ for `bash bench/gpu.sh` (run tool: carry [".whl"]). Never torch.
# Each at the version this checkout's .venv has (what the tests here ran), else the newest.
#
#   make gpu-wheels        (or: PYTHON=path/to/python bash bench/gpu_wheels.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3

# open_clip_torch needs ftfy (-> wcwidth); zarr needs donfig, google-crc32c, numcodecs; dask
# (xarray's lazy reader, Run.activations) needs partd (-> locket). Their other needs (regex,
# huggingface_hub, safetensors, timm, typing_extensions, packaging, pyyaml, toolz, cloudpickle,
# fsspec, click, matplotlib, tqdm) are on the device already.
PACKAGES=(open_clip_torch ftfy wcwidth zarr numcodecs donfig google-crc32c captum dask partd locket)

rm -rf .whl && mkdir -p .whl  # one version of each: two would stop the install there
for name in "${PACKAGES[@]}"; do
    version=$("$PY" -c "import importlib.metadata as m, sys
try: print(m.version(sys.argv[1]))
except m.PackageNotFoundError: pass" "$name")
    spec=$name${version:+==$version}
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform manylinux1_x86_64 -d .whl "$spec" 2> >(grep -v "is ignored: it is neither" >&2)
    echo "$spec"
done
ls .whl
du -sh .whl

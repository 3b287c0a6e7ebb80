# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_RUN ?= runs/demo

.PHONY: install test lint demo bench clean browser gpu-wheels gpu-dry-run

install: $(STAMP)

# torch first, pinned: it installs from local disk here, and nothing afterwards may pull another build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

lint: $(STAMP)
	$(PY) -m ruff check .

# The atlas browser test drives Debian's chromium (no browser download); install it where missing.
browser:
	command -v chromium >/dev/null 2>&1 || { $$(command -v sudo) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$(command -v sudo) apt-get install -y -qq chromium; }

# Two test processes (pytest-xdist), work-stealing: the slow end-to-end tests run beside the rest.
test: $(STAMP) lint browser
	$(PY) -m pytest -q -n 2 --dist worksteal

# Offline, untrained RN50, 64 images per set (natural: 8 crops of each of the 8 bundled photos),
# top-16 per unit (neuron features cost in proportion to it); DAF on 100 captioned stimuli against
# an untrained DINOv2 (the offline control); TCAC on 24 of them under identity and the three
# transforms with an expected shift (all eight add 20 s); one ablation, the largest of the types
# any_word, color_word and colour, on 8 naming images per set against 4 random draws (p floor
# 0.2; each condition costs a forward per image). Resumable; prints the atlas path.
demo: $(STAMP)
	$(VENV)/bin/chromadissect run --run-dir $(DEMO_RUN) --model RN50 --pretrained none \
		--samples-per-combo 8 --limit 64 --top-n 16 --corpus-size 100 --reference-weights none \
		--tcac-images 24 --transforms grayscale,hflip,inversion \
		--units auto --control-draws 4 --doses 1 --ablation-images 8

bench: $(STAMP)
	$(PY) bench/stimuli.py
	$(PY) bench/extract.py

# Wheels of what the lent GPU machine's python3 lacks (open_clip, zarr, numcodecs, captum, ...), into
# the git-ignored .whl/ that `bash bench/gpu.sh` installs there (docs/extraction.md, "GPU").
gpu-wheels: $(STAMP)
	PYTHON=$(PY) bash bench/gpu_wheels.sh

# bench/gpu.sh's steps on CPU with the tiny CLIP: known to work before a GPU is lent (about 1 min).
gpu-dry-run: $(STAMP)
	PYTHON=$(PY) bash bench/gpu.sh --cpu-dry-run

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache

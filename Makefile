# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_RUN ?= runs/demo

.PHONY: install test lint demo bench clean

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

test: $(STAMP) lint
	$(PY) -m pytest -q

demo: $(STAMP)
	$(VENV)/bin/chromadissect run --run-dir $(DEMO_RUN) --model RN50 --pretrained none --samples-per-combo 1 --limit 256 --natural-limit 256

bench: $(STAMP)
	$(PY) bench/stimuli.py
	$(PY) bench/extract.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache

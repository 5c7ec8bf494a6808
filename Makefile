# One command to install, one to test; every stage reachable from here.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RAW ?= dataset_raw
OUT ?= dataset_generated
STYLES ?= mask_images
SEED ?= 0
SHARED ?= ../shared

.PHONY: install generate styles demo test bench-generate draw-styles clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[dev]'
	# face-recognition declares the source-only `dlib`; dlib-bin (a dependency above) provides it.
	$(PY) -m pip install --no-deps 'face-recognition==1.3.0'
	touch $@

generate: install
	$(PY) -m augment generate --raw $(RAW) --out $(OUT) --styles $(STYLES) --seed $(SEED)

styles: install
	$(PY) -m augment styles --styles $(STYLES)

draw-styles: install
	$(PY) -m augment draw-styles --out mask_images

demo: install
	$(PY) -m augment demo --out build/demo

test: install
	$(PY) -m pytest

bench-generate: install
	$(PY) bench/bench_generate.py --shared $(SHARED)

clean:
	rm -rf build .pytest_cache

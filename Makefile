# One command to install, one to test; every stage reachable from here.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RAW ?= dataset_raw
OUT ?= dataset_generated
STYLES ?= mask_images
SEED ?= 0
UPSAMPLE ?= 0
SPLIT_BY ?= photo
RESTART ?=
SHARED ?= ../shared
BENCH_SEEDS ?= 0
DATA ?= dataset_generated
MODEL ?= models/mask_classifier.keras
WEIGHTS ?= imagenet
ALPHA ?= 1.0
IMAGE ?= docs/examples.jpg
VIDEO ?= 0
DETECTOR ?=
SCENES ?= dataset_scenes
COUNT ?= 3000
DETECTOR_MODEL ?= models/mask_detector.keras
DETECTOR_ALPHA ?= 0.35

.PHONY: install generate sheet styles demo test bench-generate bench-train bench-mix bench-video train evaluate detect-image \
	detect-video detect-evaluate scenes train-detector bench-detect draw-styles clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[dev]'
	# face-recognition declares the source-only `dlib`; dlib-bin (a dependency above) provides it.
	$(PY) -m pip install --no-deps 'face-recognition==1.3.0'
	touch $@

generate: install
	$(PY) -m augment generate --raw "$(RAW)" --out "$(OUT)" --styles "$(STYLES)" --seed $(SEED) --upsample $(UPSAMPLE) \
		--split-by $(SPLIT_BY) $(if $(RESTART),--restart)

sheet: install
	$(PY) -m augment sheet "$(OUT)"

styles: install
	$(PY) -m augment styles --styles "$(STYLES)"

draw-styles: install
	$(PY) -m augment draw-styles --out mask_images

train: install
	$(PY) -m train fit --data "$(DATA)" --model "$(MODEL)" --weights "$(WEIGHTS)" --alpha $(ALPHA)

evaluate: install
	$(PY) -m train evaluate --model "$(MODEL)" --data "$(DATA)" --report "$(basename $(MODEL))/evaluate.json" \
		--errors "$(basename $(MODEL))/evaluate_errors.png"

scenes: install
	$(PY) -m augment scenes --raw "$(RAW)" --out "$(SCENES)" --count $(COUNT) --styles "$(STYLES)" --seed $(SEED)

train-detector: install
	$(PY) -m detect train-detector --scenes "$(SCENES)" --model "$(DETECTOR_MODEL)" --weights "$(WEIGHTS)" --alpha $(DETECTOR_ALPHA)

detect-image: install
	$(PY) -m detect image "$(IMAGE)" --model "$(MODEL)" --detector $(or $(DETECTOR),auto) --detector-model "$(DETECTOR_MODEL)"

detect-video: install
	$(PY) -m detect video "$(VIDEO)" --model "$(MODEL)" --detector $(or $(DETECTOR),hog) --detector-model "$(DETECTOR_MODEL)"

detect-evaluate: install
	$(PY) -m detect evaluate --model "$(MODEL)" --data "$(DATA)" --detector $(or $(DETECTOR),auto) \
		--detector-model "$(DETECTOR_MODEL)" --report "$(basename $(MODEL))/detect_$(or $(DETECTOR),auto).json"

demo: install
	$(PY) -m augment demo --out build/demo

test: install
	$(PY) -m pytest

bench-generate: install
	$(PY) bench/bench_generate.py --shared "$(SHARED)" --seeds $(BENCH_SEEDS)

bench-train: install
	$(PY) bench/bench_train.py --shared "$(SHARED)"

bench-mix: install
	$(PY) bench/bench_mix.py --shared "$(SHARED)"

bench-video: install
	$(PY) bench/bench_video.py --shared "$(SHARED)" --model "$(MODEL)"

bench-detect: install
	$(PY) bench/bench_detect.py --shared "$(SHARED)" --model "$(MODEL)" --detector-model "$(DETECTOR_MODEL)"

clean:
	rm -rf build .pytest_cache

# Set-up and the two everyday commands. After `make setup`, plain `.venv/bin/snakemake ...` works.
VENV ?= .venv
PYTHON ?= python3
CORES ?= 2
PY := $(VENV)/bin/python

MEDIAPIPE ?= envs/mediapipe

.PHONY: setup setup-mediapipe setup-browser demo test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed

# MediaPipe (pose mode 'mediapipe') needs numpy<2: its own environment, no torch in it; the
# project is installed there without its dependencies, so the stage runs from any folder
$(MEDIAPIPE)/.installed: envs/mediapipe.txt pyproject.toml
	$(PYTHON) -m venv $(MEDIAPIPE)
	$(MEDIAPIPE)/bin/python -m pip install -q -r envs/mediapipe.txt
	$(MEDIAPIPE)/bin/python -m pip install -q --no-deps -e .
	touch $@

setup-mediapipe: $(MEDIAPIPE)/.installed

# The preference study's browser test: Debian's chromium and its driver (nothing downloaded at run time)
setup-browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else echo "the browser test needs Debian's chromium and chromium-driver: sudo apt-get install chromium chromium-driver" >&2; fi

# --rerun-incomplete: after a kill, go on (redo the jobs it cut short); --show-failed-logs: a failed
# job's log, with its one-line reason, in the console
demo: setup  ## the main job on the embedded demo dataset (synthcity)
	$(VENV)/bin/snakemake --cores $(CORES) --rerun-incomplete --show-failed-logs results/demo/fid.json

test: setup setup-mediapipe setup-browser  ## the rules' format and lint, then the test suite
	$(VENV)/bin/snakefmt --check Snakefile workflow/
	$(VENV)/bin/snakemake --lint
	$(PY) -m pytest

bench: setup  ## benchmark tables (not tests)
	$(PY) benchmarks/synthcity_speed.py
	$(PY) benchmarks/frames_speed.py
	$(PY) benchmarks/flow_quality.py
	$(PY) benchmarks/cache_formats.py
	$(PY) benchmarks/loader_speed.py
	$(PY) benchmarks/annotation_speed.py --device both
	$(PY) benchmarks/annotation_quality.py
	$(PY) benchmarks/warp_sharpness.py
	$(PY) benchmarks/face_pose_speed.py
	$(PY) benchmarks/crash_harness.py
	$(PY) benchmarks/long_video_memory.py
	$(PY) benchmarks/full_size_dag.py
	$(PY) benchmarks/stage_cost.py
	$(PY) benchmarks/train_speed.py --quick

clean:
	rm -rf results .snakemake

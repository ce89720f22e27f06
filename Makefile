# Set-up and the two everyday commands. After `make setup`, plain `.venv/bin/snakemake ...` works.
VENV ?= .venv
PYTHON ?= python3
CORES ?= 2
PY := $(VENV)/bin/python

.PHONY: setup demo test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed

demo: setup  ## the main job on the embedded demo dataset (synthcity)
	$(VENV)/bin/snakemake --cores $(CORES) results/demo/fid.json

test: setup  ## the test suite
	$(PY) -m pytest

bench: setup  ## benchmark tables (not tests)
	$(PY) benchmarks/synthcity_speed.py
	$(PY) benchmarks/frames_speed.py
	$(PY) benchmarks/flow_quality.py
	$(PY) benchmarks/cache_formats.py
	$(PY) benchmarks/loader_speed.py
	$(PY) benchmarks/train_speed.py --quick

clean:
	rm -rf results .snakemake

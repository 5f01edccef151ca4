# Two entry points (see README): `make demo` runs the main job, `make test` the whole suite.
# Both create .venv and install everything first; torch 2.13.0 (CPU wheel) goes in before
# anything else so no CUDA build is pulled, and torchvision is never installed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1

.PHONY: demo test install

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test]"
	touch $@

demo: $(STAMP)
	$(VENV)/bin/ipfacediff demo --out demo_out

test: $(STAMP)
	$(PY) -m pytest -q

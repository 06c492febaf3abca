# Two commands for a fresh machine:  `make demo` (set up + run the main job)  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU build here; on a GPU machine install the torch build for your CUDA first (any torch >= 2.1 works).
TORCH ?= torch==2.13.0

.PHONY: install demo test lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) scripts/demo_inputs.py --out out
	$(VENV)/bin/omnisync run --video out/portrait.png --audio out/speech.wav --out out/demo.mp4 --overwrite
	@echo "demo video: out/demo.mp4"

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache

# Glassbox: `make run` sets up and starts the app on its embedded default (SQLite, in-process
# worker); `make test` runs the whole test suite (what CI runs).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
HOST ?= 127.0.0.1
PORT ?= 8000
# Set TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu to force the CPU build of torch on
# machines where PyPI's default wheel is a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install run test test-fast bench lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH_SPEC)" $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL),)
	$(PIP) install -q -e ".[app,dev]"
	touch $@

run: install
	$(VENV)/bin/glassbox serve --host $(HOST) --port $(PORT)

test: install
	node --test tests/js/
	$(PY) -m pytest -q

test-fast: install
	node --test tests/js/
	$(PY) -m pytest -q -m "not slow and not browser"

bench: install
	$(PY) bench/trace_bench.py

lint: install
	$(VENV)/bin/ruff check glassbox server worker tests bench

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts

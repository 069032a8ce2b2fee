# skyutils: `make run` builds everything and runs the demo; `make test` builds
# and runs every test. One release profile and one target dir are shared by
# the host, its tests and the benches, so wasmtime is compiled once.

CARGO ?= cargo
VENV := .venv
PY := $(VENV)/bin/python
WASM := target/guest/wasm32-wasip2/wasm/skyutils_guest.wasm
PYWASM := python-host/src/skyutils_wasm/skyutils.wasm

.PHONY: all setup component plugins build run test test-rust test-python lint check-targets bench fuzz oracle clean

all: build

setup: $(VENV)/.stamp
	rustup target add wasm32-wasip2

$(VENV)/.stamp: python-host/requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r python-host/requirements-dev.txt
	touch $@

# The guest component is built one way: by host/build.rs, as part of the
# host. `make component` builds the host and copies the component it built
# (with its sha256) into the Python package.
build: setup
	$(CARGO) build --locked --release -p skyutils-host

component: build
	@mkdir -p $(dir $(PYWASM)) && cp $(WASM) $(PYWASM)
	@cd $(dir $(PYWASM)) && sha256sum $(notdir $(PYWASM)) > $(notdir $(PYWASM)).sha256
	@ls -l $(WASM)

# Misbehaving test components (tests/plugins/), for the sandbox tests.
plugins: setup
	$(CARGO) build --locked --manifest-path tests/plugins/evil/Cargo.toml --target wasm32-wasip2 --release --target-dir target/plugins

run: component
	./host/demo.sh

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --release --workspace --all-targets -- -D warnings
	$(CARGO) clippy --locked -p skyutils-guest -p skyutils-common --target wasm32-wasip2 --profile wasm --target-dir target/guest -- -D warnings

test-rust: build plugins
	$(VENV)/bin/wasm-tools component wit $(WASM) | grep -q 'export skypilot:utils/system@0.1.0'
	$(CARGO) test --locked --release --workspace --lib --bins
	$(CARGO) test --locked --release -p skyutils-host --test all -- --show-output

test-python: component plugins
	python-host/scripts/test.sh

# The native host for Windows and macOS: `cargo check` and clippy (no link,
# so no SDK is needed). Only wasmtime's build script compiles C for the target
# (its helpers.c, macOS only): Debian's mingw gcc serves Windows; for macOS,
# clang with -ffreestanding and a stdlib.h shim (the file only needs
# stddef.h's types). A separate target dir keeps the native build warm.
XTARGETS := x86_64-pc-windows-gnu aarch64-apple-darwin
XDIR := target/xplat
XSHIM := $(XDIR)/darwin-include
XENV := CC_x86_64_pc_windows_gnu=x86_64-w64-mingw32-gcc AR_x86_64_pc_windows_gnu=x86_64-w64-mingw32-ar \
	CC_aarch64_apple_darwin=clang AR_aarch64_apple_darwin=llvm-ar \
	CFLAGS_aarch64_apple_darwin="--target=aarch64-apple-darwin -ffreestanding -isystem $(CURDIR)/$(XSHIM)"

check-targets:
	@if command -v rustup >/dev/null; then rustup -q target add $(XTARGETS) wasm32-wasip2; fi
	@mkdir -p $(XSHIM) && printf '#pragma once\n#include <stddef.h>\nvoid abort(void);\n' > $(XSHIM)/stdlib.h
	@set -e; for t in $(XTARGETS); do \
	  echo "check-targets: $$t"; \
	  $(XENV) $(CARGO) check --locked -q -p skyutils-host --target $$t --target-dir $(XDIR); \
	  $(XENV) $(CARGO) clippy --locked -q -p skyutils-host --target $$t --target-dir $(XDIR) -- -D warnings; \
	done

test: lint test-rust test-python check-targets

bench: component
	rm -rf target/criterion
	$(CARGO) bench --locked -p skyutils-host --bench component
	$(PY) python-host/benchmarks/run.py
	$(PY) host/benches/report.py > /dev/null
	@echo "wrote BENCHMARKS.md"

# Differential test against the real SkyPilot 0.14.1 (installed into .venv-oracle):
# randomized inputs, both Python backends, result-for-result.
oracle: component
	$(PY) python-host/tests/oracle/run_oracle.py 3000 7

# Longer property-test run than the bounded one in `make test`.
fuzz: build
	PROPTEST_CASES=20000 $(CARGO) test --locked --release -p skyutils-host --test all -- --nocapture fuzz::

clean:
	rm -rf target $(PYWASM)

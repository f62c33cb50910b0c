# One front door: make test | make demo | make bench | make lint
PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
DEPS   := $(VENV)/.deps
BUILT  := $(VENV)/.built
SOURCES := $(shell git ls-files csrc flinktf_ipc src cmake scripts CMakeLists.txt pyproject.toml 2>/dev/null)

.PHONY: install test test-c test-py demo bench lint clean

# A fresh machine: system packages, a venv with the build requirements and all extras.
$(DEPS): pyproject.toml scripts/requirements.py $(wildcard scripts/install-system-deps.sh)
	@command -v java >/dev/null || { echo "Java 17 (java, javac) is required: apt-get install openjdk-17-jdk-headless" >&2; exit 1; }
	@if [ -f scripts/install-system-deps.sh ]; then bash scripts/install-system-deps.sh; fi
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) scripts/requirements.py > $(VENV)/requirements.txt
	$(VPY) -m pip install -q -r $(VENV)/requirements.txt
	$(VPY) scripts/requirements.py --no-deps > $(VENV)/requirements-nodeps.txt
	$(VPY) -m pip install -q --no-deps -r $(VENV)/requirements-nodeps.txt
	touch $@

# The package itself (C library, cffi extension, jar), built against the venv's packages.
$(BUILT): $(DEPS) $(SOURCES)
	$(VPY) -m pip install -q --no-build-isolation --no-deps --force-reinstall .
	touch $@

install: $(BUILT)

# C tests: plain, ASan+UBSan, TSan (two threads in one process), and the Java tests (some start
# Python processes that import the installed package, hence $(BUILT)).
test-c: $(BUILT)
	cmake -S . -B build/ctest -DFTI_BUILD_TESTS=ON -DFTI_PY_EXECUTABLE=$(abspath $(VPY)) >/dev/null
	cmake --build build/ctest -j2
	ctest --test-dir build/ctest --output-on-failure

test-py: $(BUILT)
	$(VENV)/bin/pytest

test: test-c test-py

demo: $(BUILT)
	$(VENV)/bin/flinktf-ipc demo --example ctr

bench: $(BUILT)
	$(VENV)/bin/flinktf-ipc bench
	$(VENV)/bin/pytest bench --benchmark-only -p no:cacheprovider --benchmark-columns=min,median,ops -q

lint: $(DEPS)
	$(VENV)/bin/ruff check flinktf_ipc tests bench examples
	$(VENV)/bin/mypy flinktf_ipc

clean:
	rm -rf build $(VENV)

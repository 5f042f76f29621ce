# Two entry points: `make demo` and `make test`. Each creates .venv and installs
# what it needs: the CPU torch wheel where no GPU is present, the extras, the
# llama.cpp server (built from source the first time, ~5 min on 2 cores).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stillroom-installed

# llama-cpp-python is built from source, portably: AVX2, FMA and F16C, never -march=native,
# AVX-512 or AMX (a native build segfaults on AVX-512/AMX CPUs and can SIGILL on another
# machine). The wheel is kept in a folder keyed by these flags, never in pip's own cache,
# so a native wheel left there is never reused.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
LLAMA_VERSION := 0.3.36
LLAMA_WHEELS := $(HOME)/.cache/stillroom/llama-cpp-python-$(LLAMA_VERSION)-$(shell echo '$(LLAMA_CMAKE_ARGS)' | sha256sum | cut -c1-12)

.PHONY: setup demo demo-quick test lint bench chromium clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	if command -v nvidia-smi >/dev/null 2>&1; then $(BIN)/pip install -q torch; \
	else $(BIN)/pip install -q torch==2.13.0; fi
	ls $(LLAMA_WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip wheel -q --no-cache-dir --no-deps \
	    -w $(LLAMA_WHEELS) "llama-cpp-python==$(LLAMA_VERSION)"
	$(BIN)/pip install -q "$$(ls $(LLAMA_WHEELS)/llama_cpp_python-*.whl)[server]"
	$(BIN)/pip install -q -e ".[train,teacher,dev,curate,curate-embed,detect-embed,spark,bench]"
	touch $(STAMP)

setup: $(STAMP)

chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

demo: $(STAMP)
	$(BIN)/stillroom demo

demo-quick: $(STAMP)
	$(BIN)/stillroom demo --quick

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Two workers, each test file on one of them (module fixtures are built once): most tests are
# single-threaded, so this halves the suite's wall time on 2 cores.
test: $(STAMP) chromium lint
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# build outputs a wheel build leaves behind (a stale build/ can hold old package names)
clean:
	rm -rf build dist *.egg-info

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

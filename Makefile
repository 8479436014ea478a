# Two commands for a newcomer: `make run` and `make test`. Everything else is installed on demand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint bench lock clean

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11 or newer is needed" or 0)'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $(STAMP)

run: $(STAMP)  ## the service on http://127.0.0.1:8000 (SQLite and a key file under ./var)
	$(BIN)/obhut serve

test: $(STAMP) lint  ## lint, types, import contracts and every test
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: $(STAMP)  ## benchmarks, each beside its baseline from the same run
	$(BIN)/python bench/run_all.py

lock:  ## re-resolve requirements.lock from pyproject.toml
	$(BIN)/uv pip compile --quiet --python-version 3.11 --extra dev --generate-hashes pyproject.toml -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

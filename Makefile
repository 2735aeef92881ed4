# The README's two commands:
#   make book  — create .venv from requirements.txt if missing, build the static HTML book
#   make test  — same venv, then the whole suite (ruff, unit tests, nbval over chapters/)
#   make claims SEEDS="1 2 3" — every chapter re-executed per seed: its claims must hold for each
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed

SEEDS ?= 1 2 3 4 5

.PHONY: book test claims venv clean vendor

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

vendor: $(STAMP)
	bash book/tools/vendor_assets.sh _vendor

book: $(STAMP) vendor
	OPTLAB_BOOK_BUILD=1 $(VENV)/bin/jupyter-book build . -W --keep-going

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest tests chapters --nbval-lax --nbval-current-env -p no:randomly

# Every chapter once per seed (its `parameters` cell replaced by SEED = k); a table of what failed.
claims: $(STAMP)
	$(PY) book/tools/claims.py --seeds $(SEEDS)

clean:
	rm -rf _build _vendor

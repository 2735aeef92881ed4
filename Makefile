# The README's commands:
#   make book  — create .venv from requirements.txt if missing, find (or fetch) MNIST, build the
#                static HTML book
#   make test  — same venv, then the whole suite (ruff, mypy, unit tests, nbval over chapters/)
#   make claims SEEDS="1 2 3" — every chapter re-executed per seed: its claims must hold for each
#   make lab   — same venv, JupyterLab on chapters/ at http://127.0.0.1:$(LAB_PORT)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed

SEEDS ?= 1 2 3 4 5

.PHONY: book test claims venv clean vendor data lab

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

vendor: $(STAMP)
	bash book/tools/vendor_assets.sh _vendor

# MNIST for chapter 12, found where the CLI and the chapter look (`python -m optlab data verify`:
# --data-dir, $$OPTLAB_DATA_DIR, the system copy, the user cache). If missing, download it into
# the user cache (MD5-checked, atomic). Never fails: offline, chapter 12 says in one line that
# MNIST is missing instead of showing numbers.
data: $(STAMP)
	@if $(PY) -m optlab data verify --dataset mnist >/dev/null 2>&1; then \
	  $(PY) -m optlab data verify --dataset mnist | head -n 1; \
	elif $(PY) -m optlab data download --dataset mnist; then :; \
	else echo "data: WARNING: MNIST not found and not downloadable (offline?); the book builds," \
	  "and chapter 12 says that MNIST is missing. Fix: python -m optlab data download"; fi

book: $(STAMP) vendor data
	OPTLAB_BOOK_BUILD=1 $(VENV)/bin/jupyter-book build . -W --keep-going

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest tests chapters --nbval-lax --nbval-current-env -p no:randomly

# Every chapter once per seed (its `parameters` cell replaced by SEED = k); a table of what failed.
claims: $(STAMP)
	$(PY) book/tools/claims.py --seeds $(SEEDS)

# JupyterLab from the project's venv, bound to this machine only. Root (a container) needs
# --allow-root; nobody else gets it. LAB_PORT=9999 make lab picks another port.
LAB_PORT ?= 8888
LAB_ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)
lab: $(STAMP)
	OPTLAB_BOOK_BUILD= PYTHONPATH=$(CURDIR)/src $(VENV)/bin/jupyter lab --ip=127.0.0.1 --port=$(LAB_PORT) \
		--ServerApp.root_dir=$(CURDIR)/chapters $(LAB_ROOT_FLAG)

clean:
	rm -rf _build _vendor

# The front door. `make course` runs the course, `make test` the tests; both set up
# a local virtual environment (.venv) from pyproject.toml first, and reuse it after.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.kdlab-installed
# Tools that call other tools by name (nbgrader runs alembic) find the venv's first.
export PATH := $(abspath $(BIN)):$(PATH)
# Extra arguments: `make course FAST=1`, `make course ONLY=02`, `make test PYTEST_ARGS=-x`,
# `make bench BENCH=compression` (one benchmark; default: all of benchmarks/*.py in turn).
FAST   ?=
WORKERS ?= 2
ONLY   ?=
BENCH  ?= $(basename $(notdir $(wildcard benchmarks/*.py)))
PYTEST_ARGS ?=

.PHONY: setup course test lab check bench clean-build lint release selfcheck grade site

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "kdlab needs Python >= 3.10, found " + sys.version.split()[0]'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[course,instructor,test]"
	touch $(STAMP)

course: setup
	$(BIN)/kdlab course $(if $(FAST),--fast) $(ONLY)

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The course (from the executed notebooks in build/course/ where there are some, else without
# outputs, each page labelled) and the API reference, as static HTML in build/site/.
site: setup
	$(BIN)/kdlab site

lab: setup
	$(BIN)/jupyter lab --notebook-dir=course $(if $(shell [ "$$(id -u)" = 0 ] && echo root),--allow-root)

bench: setup
	set -e; for b in $(BENCH); do echo "== benchmarks/$$b.py"; $(BIN)/python benchmarks/$$b.py; done

# Instructor shortcuts (see assignments/README.md): release every assignment, check that
# reference solutions get full marks and untouched releases zero, autograde collected work.
release: setup
	$(BIN)/kdlab release

selfcheck: setup
	$(BIN)/kdlab selfcheck --workers $(WORKERS)

grade: setup
	$(BIN)/kdlab autograde --workers $(WORKERS)

check: setup
	$(BIN)/kdlab check

lint: setup
	$(BIN)/ruff check kdlab tests benchmarks

clean-build:
	rm -rf build

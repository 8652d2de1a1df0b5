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
# Setup: `make setup` installs the exact versions of the last green run (constraints.txt);
# `make setup LATEST=1` the newest versions pyproject.toml allows; `make setup TORCH=cpu` first
# takes torch and torchvision from PyTorch's CPU-only wheel index (no CUDA libraries, for a
# new .venv; remembered by later runs). The stamp records the choice: another one reinstalls.
CONSTRAINTS := constraints.txt
LATEST ?=
STAMP_TEXT := $(shell cat $(STAMP) 2>/dev/null)
TORCH  ?= $(patsubst torch=%,%,$(filter torch=%,$(STAMP_TEXT)))
ifneq ($(filter-out cpu,$(TORCH)),)
$(error TORCH=$(TORCH): the one choice is TORCH=cpu (PyTorch's CPU-only wheels); leave it unset for the default)
endif
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
PIN    := $(if $(LATEST),,$(if $(wildcard $(CONSTRAINTS)),-c $(CONSTRAINTS)))
# torch and torchvision as pinned (the CPU index does not carry every other pin).
TORCH_PINS := $(if $(PIN),$(shell sed -n -E 's/^(torch|torchvision)==([^ ;]+).*/\1==\2/p' $(CONSTRAINTS)),torch torchvision)
SETUP_MODE := $(if $(LATEST),latest,pinned) torch=$(TORCH)
ifneq ($(STAMP_TEXT),$(SETUP_MODE))
.PHONY: $(STAMP)
endif
# A CUDA build of torch (it requires nvidia-* or cuda-* packages) cannot become a CPU-only one in place.
CUDA_TORCH_CHECK := import sys, importlib.metadata as m; \
  d = {x.metadata["Name"]: x for x in m.distributions()}.get("torch"); \
  cuda = d and any(r.startswith(("nvidia", "cuda")) for r in d.requires or []); \
  sys.exit(cuda and "$(VENV) has a CUDA build of torch; for TORCH=cpu start afresh: rm -rf $(VENV) && make setup TORCH=cpu")

.PHONY: setup course test lab check bench clean-build lint release selfcheck grade site \
	constraints write-constraints

setup: $(STAMP)

$(STAMP): pyproject.toml $(wildcard $(CONSTRAINTS))
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "kdlab needs Python >= 3.11, found " + sys.version.split()[0]'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(if $(filter cpu,$(TORCH)),$(BIN)/python -c '$(CUDA_TORCH_CHECK)')
	$(if $(filter cpu,$(TORCH)),$(BIN)/python -m pip install --quiet --index-url $(TORCH_INDEX) $(TORCH_PINS))
	$(BIN)/python -m pip install --quiet $(PIN) -e ".[course,instructor,test]"
	echo "$(SETUP_MODE)" > $(STAMP)

# `make constraints`: run the tests and, when they pass, record .venv's exact versions in
# constraints.txt (`make constraints LATEST=1`: on the newest versions pyproject.toml allows).
constraints: test
	$(MAKE) --no-print-directory write-constraints GREEN=1
	touch $(STAMP)

# The last step of `make constraints` (alone, it records .venv as it is, tests not run):
# pip freeze of .venv, less kdlab, pip and local version labels (+cpu), which PyPI lacks.
GREEN ?=
write-constraints:
	{ echo "# Exact versions for \`make setup\`, which installs with \`pip install -c $(CONSTRAINTS)\`;"; \
	  echo "# \`make setup LATEST=1\` ignores this file and takes the newest versions pyproject.toml allows."; \
	  echo "# Written on $$(date -u +%Y-%m-%d) from .venv ($$($(BIN)/python -c 'import platform as p; print("Python", p.python_version(), "on", p.system(), p.machine())'))$(if $(GREEN), by \`make constraints\` after \`make test\` passed, by \`make write-constraints\` (tests not run)):"; \
	  echo "# pip freeze --all --exclude-editable, less kdlab, pip and local version labels (+cpu)."; \
	  echo "# Refresh: \`make constraints\` (the current .venv) or \`make constraints LATEST=1\` (the newest)."; \
	  $(BIN)/python -m pip freeze --all --exclude-editable | grep -v -i -E '^(pip|kdlab)==' | sed -E 's/^([^=]+==[^+]+)[+].*/\1/'; \
	} > $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)

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

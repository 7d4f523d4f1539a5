# The README's commands. Each creates (or reuses) the virtual environment .venv and installs
# what it needs, so both work on a fresh machine with Python 3.10+:
#
#   make book   build the book into _build/html (loads committed results; trains nothing)
#   make test   unit tests, notebook tests (nbval) and a book build from a clean cache
#
# Other targets: make pdf (the whole book as one PDF, for handouts), make results, or make sweep
# (regenerate the committed results by rerunning the experiment chapters with their default
# parameters; trains only what results/ lacks), make lint, make bench, make clean.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# The authors' published curves (chapter 4 and its tests): an explicit HYPERLR_PAPER_CURVES
# wins; else a checkout of the project's shared data beside this repository; else hyperlr.lab.paper
# downloads them once at a pinned commit.
PAPER_CURVES_BESIDE := $(abspath ../shared/data/hyperboliclr-paper-curves)
ifeq ($(HYPERLR_PAPER_CURVES),)
ifneq ($(wildcard $(PAPER_CURVES_BESIDE)),)
export HYPERLR_PAPER_CURVES := $(PAPER_CURVES_BESIDE)
endif
endif

# Frozen-module warnings of the debugger inside kernels are noise in the book's outputs.
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: book test pdf results sweep lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else \
	  "hyperlr needs Python 3.10 or newer; run make with PYTHON=/path/to/python3.1x")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "The book is in _build/html/index.html"

# pytest's exit status 5 means "no test collected": a broken suite, so it fails too. pytest runs
# one worker process per core (pytest-xdist), each test file whole in one worker, so that nbval
# runs a chapter's cells in order in one kernel; chapters/conftest.py gives those kernels a
# machine without data sets or network. (Running the book build beside pytest was measured
# slower on two cores: both are bound by the processor.) Each worker's torch, and the kernels and
# subprocesses it starts, use one thread (OMP_NUM_THREADS=1): by default every one of them takes a
# thread per core, so the workers oversubscribe the cores (pytest measured on two 2-core machines,
# each pair in the same conditions: 595 s with torch's default threads against 351 s with one;
# 385 s against 229 s).
test: $(STAMP)
	$(BIN)/ruff check .
	MPLBACKEND=agg OMP_NUM_THREADS=1 $(BIN)/python -m pytest tests chapters --nbval-lax \
	  -p no:cacheprovider -n auto --dist loadfile; \
	  status=$$?; [ $$status -ne 5 ] || echo "pytest collected no test"; exit $$status
	rm -rf _build/test
	$(BIN)/jupyter-book build . --path-output _build/test -W -n --keep-going || { \
	  for log in _build/test/_build/html/reports/*.log; do \
	    [ -f "$$log" ] && { echo "== execution report $$log"; cat "$$log"; }; \
	  done; exit 1; }
	HYPERLR_BOOK_HTML=_build/test/_build/html $(BIN)/python -m pytest -p no:cacheprovider \
	  tests/test_offline_browser.py -k "every_page or books_explorer"

# The whole book as one PDF: _build/latex/book.pdf, by XeLaTeX. LaTeX comes from Debian's
# packages, which this installs with apt-get when one is missing (as root, or through sudo).
PDF_PACKAGES := latexmk texlive-xetex texlive-latex-recommended texlive-latex-extra \
  texlive-fonts-recommended fonts-freefont-otf
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
pdf: $(STAMP)
	dpkg -s $(PDF_PACKAGES) >/dev/null 2>&1 || { $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	    $(PDF_PACKAGES); }
	$(BIN)/jupyter-book build . --builder pdflatex
	@echo "The PDF is in _build/latex/book.pdf"

# Each experiment chapter, run with its default parameters, fills its folder of results/.
# Delete a folder (or some of its files) first to retrain those runs.
results: $(STAMP)
	mkdir -p _build/results
	for chapter in 05_image_classification 06_sequence_forecasting 07_tune_short_train_long \
	    08_operator_learning; do \
	  MPLBACKEND=agg $(BIN)/papermill --cwd chapters chapters/$$chapter.ipynb \
	    _build/results/$$chapter.ipynb || exit 1; \
	done

sweep: results

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check hyperlr tests benchmarks
	$(BIN)/mypy --strict hyperlr/*.py

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_schedulers.py
	$(BIN)/python benchmarks/bench_trainer.py

clean:
	rm -rf _build

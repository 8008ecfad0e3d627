# workbench: `make demo` and `make test` work on a fresh Debian machine.
# The Makefile installs everything the project needs; nothing is installed by hand.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO   ?= build/demo

APT_PACKAGES := tesseract-ocr tesseract-ocr-eng tesseract-ocr-fas tesseract-ocr-ara \
                tesseract-ocr-osd strace fonts-noto-core fonts-farsiweb chromium \
                libimage-exiftool-perl openssh-client \
                libtesseract-dev libleptonica-dev pkg-config g++ python3-dev

.PHONY: setup system-deps test demo bench bench-quick bench-search lint format clean

setup: system-deps $(STAMP)

# Tesseract 5 with eng/fas/ara (+osd for orientation), strace for the no-network test,
# the Persian fonts the fixture generator typesets with, and chromium, in which a test
# renders the HTML report, ExifTool, which reads every metadata tag for the checks, and
# OpenSSH's ssh-keygen, which signs and verifies review-log checkpoints; and Tesseract's
# library headers with a compiler, to build tesserocr (in-process Tesseract) against the
# SAME Tesseract as the program above (its own wheel bundles another version, whose
# Persian reading differs: see README "Install").
system-deps:
	@missing=""; \
	command -v tesseract >/dev/null 2>&1 || missing="yes"; \
	for lang in eng fas ara osd; do \
	  tesseract --list-langs 2>/dev/null | grep -qx "$$lang" || missing="yes"; \
	done; \
	command -v strace >/dev/null 2>&1 || missing="yes"; \
	command -v chromium >/dev/null 2>&1 || missing="yes"; \
	command -v exiftool >/dev/null 2>&1 || missing="yes"; \
	command -v ssh-keygen >/dev/null 2>&1 || missing="yes"; \
	command -v g++ >/dev/null 2>&1 || missing="yes"; \
	pkg-config --exists tesseract lept 2>/dev/null || missing="yes"; \
	[ -f /usr/share/fonts/truetype/noto/NotoNaskhArabic-Regular.ttf ] || missing="yes"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing system packages: $(APT_PACKAGES)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	  else \
	    echo "workbench needs system packages; run:"; \
	    echo "  sudo apt-get update && sudo apt-get install -y $(APT_PACKAGES)"; \
	    exit 1; \
	  fi; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	# --no-binary tesserocr: built against the system libtesseract (see system-deps)
	$(BIN)/pip install -q --no-binary tesserocr -e '.[dev,cluster]'
	@touch $(STAMP)

test: setup
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check workbench fixtures tests bench
	$(BIN)/ruff format --check workbench fixtures tests bench

format: setup
	$(BIN)/ruff format workbench fixtures tests bench
	$(BIN)/ruff check --fix workbench fixtures tests bench

# Build a ~700-page trove (mostly born-digital, a few dozen scanned pages), ingest it
# with Persian + English OCR, show the case, and open the reviewer app (on a terminal).
demo: setup
	@[ -f $(DEMO)/trove/ground_truth.json ] || $(BIN)/python -m fixtures.generate $(DEMO)/trove --pages 700 --scanned 30
	$(BIN)/workbench --case $(DEMO)/case ingest $(DEMO)/trove/born_digital $(DEMO)/trove/scans $(DEMO)/trove/loose --lang fas+eng
	$(BIN)/workbench --case $(DEMO)/case status
	@if [ -t 0 ] && [ -t 1 ]; then $(BIN)/workbench --case $(DEMO)/case open; \
	else echo "open the reviewer app with: $(BIN)/workbench --case $(DEMO)/case open"; fi

bench: setup
	@command -v ocrmypdf >/dev/null 2>&1 || { if [ "$$(id -u)" = "0" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ocrmypdf >/dev/null; else echo "bench needs ocrmypdf; run: sudo apt-get install -y ocrmypdf"; exit 1; fi; }
	$(BIN)/python -m bench.run

bench-quick: setup
	$(BIN)/python -m bench.run --quick

# search at 700 and 100,000 pages and SQLite FTS5 beside it, nothing else (issue #15)
bench-search: setup
	$(BIN)/python -m bench.run --only search

clean:
	rm -rf build .pytest_cache .ruff_cache

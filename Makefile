# Prompt Studio: `make run` starts the studio, `make test` runs the whole suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000

.PHONY: run test lint format bench install clean-data browser editor-assets

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q --upgrade pip
	$(BIN)/pip install --disable-pip-version-check -q -r requirements-dev.txt
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py runstudio --port $(PORT)

test: $(STAMP)
	@if [ -x /usr/bin/chromium ]; then :; else \
		echo "NOTE: /usr/bin/chromium is missing, so the browser tests will NOT run (install Debian's chromium to run them)."; fi
	STUDIO_DATA_DIR=$${STUDIO_DATA_DIR:-$(CURDIR)/data/test-run} $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	@for script in bench/*.py; do [ -f "$$script" ] && $(BIN)/python "$$script" || exit 1; done

clean-data:
	rm -rf data

# The prompt editor's CodeMirror bundle (committed, so `make run` needs no npm): rebuild after changing
# static/src/editor/entry.js or its package.json. Needs node and the npm registry.
editor-assets:
	cd static/src/editor && npm ci --no-audit --no-fund && npm run build

# Two entry points for a fresh machine with python3, git and make:
#   make demo   installs everything into .venv and runs the demo
#   make test   installs everything into .venv and runs the whole test suite
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: demo test install browser clean-venv

$(BIN)/.installed: pyproject.toml
	@bash .ci/make-venv $(PYTHON) $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/.installed

# Page tests drive Debian's chromium through Playwright.
browser:
	@bash .ci/install-chromium

demo: install
	$(BIN)/invoke demo

test: install browser
	$(BIN)/invoke test

clean-venv:
	rm -rf $(VENV)

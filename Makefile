# Two entry points: `make demo` and `make test`. Both set up everything they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo lab test install system-deps browser-deps bench clean docs-config docs-screenshots examples-cassettes events-schema

$(PY):
	$(PYTHON) -m venv $(VENV)

# The labextension is built by the rule below, with the venv's jlpm, not by pip's build hook (that is for wheels).
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	SKIP_JUPYTER_BUILDER=1 $(PY) -m pip install --quiet -e ".[analysis,test]"
	touch $@

# The JupyterLab extension (labextension/, TypeScript): jlpm comes with jupyterlab; the build goes to
# llm_agent_magic/labextension/, which `jupyter labextension develop` links into the venv.
WITH_VENV := PATH="$(CURDIR)/$(VENV)/bin:$$PATH"
LABEXT_STAMP := $(VENV)/.labextension
# (src/generated/ is written by the build: the events' TypeScript types, from schema-gen/events.schema.json.)
LABEXT_SOURCES := $(filter-out labextension/src/generated,$(wildcard labextension/src/*)) $(wildcard labextension/style/*) \
	$(wildcard labextension/schema/*) $(wildcard labextension/schema-gen/*) \
	labextension/package.json labextension/yarn.lock labextension/tsconfig.json
$(LABEXT_STAMP): $(LABEXT_SOURCES) $(STAMP)
	cd labextension && $(WITH_VENV) jlpm install --immutable && $(WITH_VENV) jlpm build:prod
	$(WITH_VENV) jupyter labextension develop --overwrite . >/dev/null 2>&1
	touch $@

# Debian packages: bubblewrap isolates the sandbox kernel. Installed only when running as root with apt.
system-deps:
	@if command -v bwrap >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing bubblewrap"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; \
	else echo "note: bubblewrap is not installed; the sandbox runs at the 'reduced' isolation level"; fi

# Debian's chromium for the browser test (tests/browser), when root with apt; the test skips without it.
browser-deps:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "note: /usr/bin/chromium is not installed; the browser test is skipped"; fi

install: $(STAMP) $(LABEXT_STAMP) system-deps browser-deps

# The setup's output (pip, jlpm: some 1,900 lines) goes to a log file; the demo says only what it did.
DEMO_LOG := build/demo-setup.log
# Beside the example, so its data/ and cassettes/ paths hold when the executed notebook is run again.
DEMO_OUT := examples/quickstart.out.ipynb
demo:
	@mkdir -p build
	@echo "Setting up .venv and the JupyterLab extension (full log: $(DEMO_LOG))..."
	@$(MAKE) --no-print-directory install >$(DEMO_LOG) 2>&1 || { tail -n 25 $(DEMO_LOG); \
	  echo "make demo: the setup failed; the whole log is $(DEMO_LOG)"; exit 1; }
	@echo "Set up."
	@$(VENV)/bin/llm-agent demo --output=$(DEMO_OUT)

# JupyterLab with the panel, on the demo's executed notebook when there is one.
lab: install
	$(VENV)/bin/jupyter lab $(wildcard $(DEMO_OUT))

# The examples are checked on two other days and zones than the Saturday (UTC) they were recorded on, the last
# time through the OpenAI protocol (the cassettes are protocol-neutral: recorded once, they replay to either).
NBVAL := $(PY) -m pytest --nbval $(filter-out %.out.ipynb,$(wildcard examples/*.ipynb)) --nbval-sanitize-with examples/nbval_sanitize.cfg -p no:cacheprovider -q
# The labextension's lint, formatting and unit tests (its dev dependencies come with `jlpm install` above).
test: install
	cd labextension && $(WITH_VENV) jlpm lint:check && $(WITH_VENV) jlpm prettier:check && $(WITH_VENV) jlpm test
	$(VENV)/bin/ruff format --check llm_agent_magic tests bench examples
	$(VENV)/bin/ruff check llm_agent_magic tests bench examples
	$(VENV)/bin/mypy
	$(PY) -m pytest
	LLM_AGENT_NOW=2027-03-02T18:40:00-08:00 TZ=America/Los_Angeles $(NBVAL)
	LLM_AGENT_NOW=2028-02-04T06:05:00+05:30 TZ=Asia/Kolkata LLM_AGENT_PROVIDER=openai $(NBVAL)

bench: install
	$(PY) bench/llm_overhead.py
	$(PY) bench/sandbox.py
	$(PY) bench/agent_overhead.py
	$(PY) bench/batch.py
	$(PY) bench/prompt_cache.py
	BENCH_CONTEXT=1 $(PY) bench/prompt_cache.py
	$(PY) bench/server.py
	$(PY) bench/eval_overhead.py
	$(PY) bench/rag.py
	$(PY) bench/panel.py
	$(PY) bench/untrusted_text.py
	$(PY) bench/context.py

# Re-record the example notebooks' cassettes and stored outputs from their hand-written scripts.
examples-cassettes: install
	$(PY) examples/refresh.py

clean:
	rm -rf $(VENV) .pytest_cache .llm_agent labextension/node_modules labextension/lib labextension/src/generated llm_agent_magic/labextension

# Regenerate the configuration table of docs/configuration.md from the traits (a test checks it is current).
docs-config: install
	$(PY) -c "import re, pathlib; from llm_agent_magic.config import markdown_table; p = pathlib.Path('docs/configuration.md'); s = p.read_text(); p.write_text(re.sub(r'(<!-- config-table:start[^>]*-->\n).*?(\n<!-- config-table:end -->)', lambda m: m.group(1) + markdown_table() + m.group(2), s, flags=re.S))"

# Regenerate the events' JSON schema the labextension's TypeScript types are built from (a test checks it is current).
events-schema: $(STAMP)
	$(PY) -m llm_agent_magic.events --json-schema > labextension/schema-gen/events.schema.json

# The README's screenshots, as the browser tests took them in their last run (make test, or pytest tests/browser).
docs-screenshots:
	cp build/browser-screenshots/panel-light.png docs/images/panel.png
	cp build/browser-screenshots/agent-cell.png docs/images/agent-cell.png

# Everything a person runs. `make run` and `make test` set up a fresh machine on their own.
VENV := .venv
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha1sum | cut -c1-12)

.PHONY: install contract-deps agent-cli-deps schemathesis-deps run test test-mariadb lint format bench migrate demo mcp worker beat lock clean

$(STAMP): requirements.lock pyproject.toml scripts/system-deps.sh
	./scripts/system-deps.sh
	command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet --disable-pip-version-check uv
	test -x $(PY) || uv venv --quiet --python python3.11 $(VENV)
	uv pip install --quiet --python $(PY) -r requirements.lock
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

# Prism, the independent validator of the Gitea adapter's requests (tests/contract/); only the
# tests need it, so `make run` does not.
contract-deps: tests/contract/node_modules/.package-lock.json

tests/contract/node_modules/.package-lock.json: tests/contract/package.json tests/contract/package-lock.json
	npm ci --prefix tests/contract --no-audit --no-fund

# The real agent CLIs (Claude Code, Codex, OpenCode) at the versions the agent image carries:
# tests/agent_cli/test_real_clis.py drives each through the runner (so `make test` installs
# them), and they run on a laptop too. `npm install` rather than `npm ci`: npm 11's ci refuses
# this lock over opencode-ai's optional per-platform packages (npm 9's ci, the image's, takes it).
agent-cli-deps: tests/agent_cli/node_modules/.package-lock.json

tests/agent_cli/node_modules/.package-lock.json: tests/agent_cli/package.json tests/agent_cli/package-lock.json
	npm install --prefix tests/agent_cli --no-audit --no-fund

# Schemathesis, the fuzzer of the REST API (tests/schemathesis/), in a virtualenv of its own: it
# only talks HTTP to a live server, and its pins need not agree with the project's.
ST_VENV := .venv-schemathesis

schemathesis-deps: $(ST_VENV)/.installed

$(ST_VENV)/.installed: tests/schemathesis/requirements.txt
	command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet --disable-pip-version-check uv
	test -x $(ST_VENV)/bin/python || uv venv --quiet --python python3.11 $(ST_VENV)
	uv pip sync --quiet --require-hashes --python $(ST_VENV)/bin/python tests/schemathesis/requirements.txt
	touch $@

migrate: install
	$(MANAGE) migrate --noinput

demo: migrate
	$(MANAGE) seed_demo

# Embedded default: SQLite under var/, in-memory channel layer, MCP at /mcp; the Procfile's web
# server (daphne on 127.0.0.1:$(PORT)), Celery worker and Celery beat under honcho, on kombu's
# filesystem broker in var/celery-broker/ (no Redis; aiworker/settings.py says why). With
# REDIS_URL set they use Redis instead. Ctrl-C stops all three.
PORT ?= 8000

run: demo
	@echo "make run: web, MCP and boards on http://127.0.0.1:$(PORT)/; Celery worker and beat beside it"
	exec env WEB_PORT=$(PORT) PUBLIC_BASE_URL=$${PUBLIC_BASE_URL:-http://127.0.0.1:$(PORT)} CELERY_BROKER_URL=$${CELERY_BROKER_URL:-$${REDIS_URL:-filesystem://localhost/}} \
		$(VENV)/bin/honcho start --port $(PORT)

test: install contract-deps schemathesis-deps agent-cli-deps
	$(PY) -m pytest

# The same suite on MariaDB + Redis (what CI's second run does).
test-mariadb: install contract-deps schemathesis-deps agent-cli-deps
	DATABASE_URL=$${DATABASE_URL:-mysql://root@127.0.0.1:3306/aiworker} \
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/0} $(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install
	$(PY) -m tests.bench

mcp: install
	$(MANAGE) mcp_server --transport http --port $${MCP_PORT:-3100}

worker: install
	$(VENV)/bin/celery -A aiworker worker -l info

beat: install
	$(VENV)/bin/celery -A aiworker beat -l info

# Re-resolve the pinned versions after editing pyproject.toml.
lock:
	uv pip compile -q pyproject.toml --extra dev -p 3.11 -o requirements.lock
	uv pip compile -q pyproject.toml -p 3.11 -o requirements-runtime.lock

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

# Two commands on a fresh machine: `make run` and `make test`.
PYTHON_BIN ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/imagineer
TEST_REDIS_URL ?= redis://127.0.0.1:6379/1
# the engine scripts/ensure-docker.sh starts for the labeling tests (no bridge, no NAT)
TEST_DOCKER_HOST ?= unix:///var/lib/imagineer-docker/docker.sock

.PHONY: run test lint format venv venv-dev services migrate superuser clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON_BIN) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed
venv-dev: $(VENV)/.installed-dev

## Start web + workers on the embedded defaults (SQLite, filesystem broker, tiny model).
run: venv
	HOST=$(HOST) PORT=$(PORT) bash scripts/run-dev.sh

## Install and start what the tests need, lint, then run the whole suite.
test: venv-dev
	bash scripts/ensure-services.sh
	bash scripts/ensure-docker.sh
	bash scripts/ensure-chromium.sh
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) DOCKER_HOST=$(TEST_DOCKER_HOST) $(VENV)/bin/pytest $(PYTEST_ARGS)

lint: venv-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

format: venv-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrate: venv
	$(PY) manage.py migrate

superuser: venv
	$(PY) manage.py createsuperuser

clean:
	rm -rf var/celery var/staticfiles

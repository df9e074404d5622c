# `make run`: set up .venv and run the main job; `make test`: set up, lint and run the tests.
VENV := .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed

# `mlflow run` starts each step as `python -m pipeline...`: the venv's python must come first.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup run lint test ui serve clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

run: setup
	mlflow run . --env-manager local

lint: setup
	ruff check .
	ruff format --check .

test: lint
	python -m pytest -q

ui: setup
	mlflow ui --host 127.0.0.1 --port 5000

serve: setup
	mlflow models serve -m models:/mnist/Production --env-manager local --host 127.0.0.1 --port 5001

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache

# `make run`: set up .venv and run the main job; `make test`: set up, lint and run the tests.
VENV := .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

# The Debian packages the project uses: Graphviz draws the layer diagrams; Fashion-MNIST's
# offline source gives version 6 its non-digits; the image sets print digits in typefaces drawn
# from handwriting, which training never prints with (the last two for the held-out sets; see
# pipeline/data/typefaces.py). The tests also start a real PostgreSQL, open the demo page in
# a real Chromium and put nginx with deploy/nginx.conf in front of a real scoring server.
HANDWRITING_FONTS := fonts-rufscript fonts-tlwg-purisa-ttf fonts-kiloji fonts-sil-andika fonts-kaushanscript \
	fonts-leckerli-one fonts-staypuft fonts-tomsontalks fonts-sjfonts fonts-havana fonts-joscelyn fonts-lobster \
	fonts-opendyslexic fonts-aoyagi-soseki fonts-aoyagi-kouzan-t fonts-kristi fonts-seto
SYSTEM_PACKAGES := graphviz dataset-fashion-mnist $(HANDWRITING_FONTS)
TEST_SYSTEM_PACKAGES := postgresql chromium nginx-light

# `mlflow run` starts each step as `python -m pipeline...`: the venv's python must come first.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup run lint test ui serve demo clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/system-packages Makefile
	scripts/system-packages $(SYSTEM_PACKAGES)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

$(TEST_STAMP): $(STAMP)
	scripts/system-packages $(TEST_SYSTEM_PACKAGES)
	touch $@

run: setup
	mlflow run . --env-manager local --experiment-name mnist

lint: setup
	ruff check .
	ruff format --check .

test: lint $(TEST_STAMP)
	python -m pytest -q

ui: setup
	@python -c "import mlflow; from pipeline.main import ui_url; e = mlflow.get_experiment_by_name('mnist'); \
		print('open', ui_url(e.experiment_id) if e else 'http://127.0.0.1:5000 (no experiment mnist yet: make run)')"
	mlflow ui --host 127.0.0.1 --port 5000

serve: setup
	mlflow models serve -m models:/mnist/Production --env-manager local --host 127.0.0.1 --port 5001 --workers 2

# The page to draw on, reading with the Production model loaded in its own process.
demo: setup
	python -m pipeline.demo --model models:/mnist/Production --host 127.0.0.1 --port 8000

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache

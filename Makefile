# Musaed — make run | make test (each works on a fresh machine).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
BIN    := $(VENV)/bin
MODEL  := models/musaed.tar.gz
export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONPATH := $(CURDIR)

# What the model is trained from: retrain only when one of these changes.
TRAINING_INPUTS := config.yml domain.yml musaed/arabic.py musaed/answers.py musaed/catalogue.yml $(wildcard components/*.py) \
                   $(shell find data -name '*.yml' 2>/dev/null)

.PHONY: help browser install train rules seed settings care chat code run cluster test validate lint unit nlu-test core-test bench clean

help:
	@echo "make run    install, train if needed, start the bot (Rasa :5005, actions :5055)"
	@echo "make test   install, train if needed, run every test"
	@echo "make care   the customer-care API and agent page on :5080 (needs MUSAED_CARE_TOKENS)"
	@echo "make chat [ARGS=--no-shape]   talk to the running bot in this terminal"
	@echo "make code ID=<national id>   the newest one-time code in the development outbox"
	@echo "make cluster [ARGS=--port 8080]   two replicas of each on PostgreSQL and Redis behind nginx"
	@echo "make settings   every setting and its value here (secrets: set/unset); rewrites the README's table"
	@echo "make install | train | rules | seed | bench | clean"

$(BIN)/.installed: requirements.txt pyproject.toml scripts/find-python310 web/package.json web/package-lock.json
	@py=$$(scripts/find-python310) || exit 1; \
	  [ -x $(BIN)/python ] || $$py -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==24.0"
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@command -v npm >/dev/null || { echo "The web widget needs Node.js and npm (apt-get install nodejs npm)." >&2; exit 1; }
	cd web && npm ci --no-audit --no-fund --silent
	@touch $@

install: $(BIN)/.installed

$(MODEL): $(BIN)/.installed $(TRAINING_INPUTS)
	@mkdir -p models
	$(BIN)/rasa train --fixed-model-name musaed --out models
	@touch $@

train: $(MODEL)

# What Rasa knows of the services (rules, domain intents and asides) is made from the catalogue
# by scripts/rasa_files.py; tests fail when a made file differs.
rules: $(BIN)/.installed
	$(BIN)/python -m scripts.rasa_files

# The environment variables Musaed reads (musaed/settings.py), with their values here;
# the README's configuration table is made from them (tests fail when it differs).
settings: $(BIN)/.installed
	$(BIN)/python -m musaed.settings --readme README.md

seed: $(BIN)/.installed
	$(BIN)/python -m musaed.seed

care: $(MODEL)
	@[ -n "$$MUSAED_CARE_TOKENS" ] || { echo 'Set MUSAED_CARE_TOKENS="name:token,..." for the agents.' >&2; exit 2; }
	$(BIN)/python -m care.server --port 5080

chat: $(BIN)/.installed
	$(BIN)/python -m scripts.chat $(ARGS)

code: $(BIN)/.installed
	@$(BIN)/python -m scripts.last_code $(ID)

run: $(MODEL)
	$(BIN)/python -m musaed.seed --if-missing
	$(BIN)/python -m scripts.run

# Two Rasa servers and two action servers on PostgreSQL and Redis behind nginx, on loopback
# (scripts/cluster.py; ARGS="--port 8080 --dir var/cluster").
cluster: $(MODEL)
	$(BIN)/python -m scripts.cluster $(ARGS)

validate: $(BIN)/.installed
	$(BIN)/rasa data validate --fail-on-warnings

# ruff (lint and format check) over the whole tree, mypy over the core (pyproject.toml).
lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

browser:
	@scripts/ensure-chromium

unit: $(MODEL) browser
	$(BIN)/python -m pytest

nlu-test: $(MODEL)
	$(BIN)/rasa test nlu --model $(MODEL) --nlu tests/nlu --out results/nlu
	$(BIN)/python -m scripts.check_nlu_report results/nlu/intent_report.json --min-accuracy 0.92
	$(BIN)/python -m bench.nlu ood $(MODEL) --max-routed 0.10 --max-confident 0.03 > results/nlu/out_of_domain.json
	$(BIN)/python -m bench.nlu ood $(MODEL) --split tests/ood/shared_words.yml --max-routed 0.10 \
	  --max-confident 0.03 > results/nlu/shared_words_out_of_domain.json
	$(BIN)/python -m bench.nlu ood $(MODEL) --split tests/ood/shared_words_2.yml --max-routed 0.10 \
	  --max-confident 0.03 > results/nlu/shared_words_2_out_of_domain.json

core-test: $(MODEL)
	$(BIN)/rasa test core --model $(MODEL) --stories tests/test_stories.yml --out results/core --fail-on-prediction-errors

test: validate lint unit nlu-test core-test

bench: $(MODEL)
	$(BIN)/python -m bench.run

clean:
	rm -rf models results .rasa

# The two commands: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000

.PHONY: run test install lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

## make run: migrate, load the demo, serve on http://127.0.0.1:5000 in embedded mode (no Redis needed)
run: install
	$(BIN)/wxcrm db upgrade
	$(BIN)/wxcrm demo
	@echo ""
	@echo "控制台 / console:  http://$(HOST):$(PORT)/console/   (登录：admin / demo123456)"
	@echo "手机 H5 (dev):     http://$(HOST):$(PORT)/h5/dev-login?openid=oDEMO0001"
	@echo "API 文档 OpenAPI:  http://$(HOST):$(PORT)/api/v1/openapi.json"
	@echo "健康检查:          http://$(HOST):$(PORT)/healthz"
	$(BIN)/wxcrm run --host $(HOST) --port $(PORT) --no-reload

## make test: the whole suite (service-backed and browser tests skip with a reason when
## PostgreSQL, Redis or Chromium are missing; REQUIRE_SERVICES=1 turns skips into failures)
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/lint-imports

bench: install
	$(BIN)/python bench/rss.py
	$(BIN)/python bench/data_scope.py

clean:
	rm -rf $(VENV) instance .pytest_cache

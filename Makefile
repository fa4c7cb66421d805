# The two commands: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000

# make run plays WeChat locally: the product talks to its own sandbox (/sandbox/wechat/) and
# the phone simulator (/sandbox/phone) sends signed, encrypted callbacks.
WECHAT_APPID    ?= wxdevappid0000001
WECHAT_SECRET   ?= dev-secret
WECHAT_TOKEN    ?= devtoken
WECHAT_AES_KEY  ?= abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG
WECHAT_API_BASE ?= http://$(HOST):$(PORT)/sandbox/wechat/
PUBLIC_BASE_URL ?= http://$(HOST):$(PORT)
run: export WECHAT_APPID := $(WECHAT_APPID)
run: export WECHAT_SECRET := $(WECHAT_SECRET)
run: export WECHAT_TOKEN := $(WECHAT_TOKEN)
run: export WECHAT_AES_KEY := $(WECHAT_AES_KEY)
run: export WECHAT_API_BASE := $(WECHAT_API_BASE)
run: export PUBLIC_BASE_URL := $(PUBLIC_BASE_URL)

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
	@(for i in 1 2 3 4 5 6; do sleep 2; $(BIN)/wxcrm wechat menu push >/dev/null 2>&1 && break; done) &
	@echo ""
	@echo "控制台 / console:  http://$(HOST):$(PORT)/console/   (登录：admin / demo123456)"
	@echo "手机模拟器:        http://$(HOST):$(PORT)/sandbox/phone   (关注公众号、发消息、点菜单)"
	@echo "手机 H5 (dev):     http://$(HOST):$(PORT)/h5/dev-login?openid=oDEMO0001"
	@echo "API 文档 OpenAPI:  http://$(HOST):$(PORT)/api/v1/openapi.json"
	@echo "健康检查:          http://$(HOST):$(PORT)/healthz"
	$(BIN)/wxcrm run --host $(HOST) --port $(PORT) --no-reload

## make test: the whole suite (service-backed and browser tests skip with a reason when
## PostgreSQL, Redis or Chromium are missing; REQUIRE_SERVICES=1 turns skips into failures)
## on both cores, file by file (pytest-xdist); TEST_JOBS=0 runs it in one process
TEST_JOBS ?= 2
test: install
	$(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadfile $(PYTEST_ARGS)

lint: install
	$(BIN)/lint-imports

bench: install
	$(BIN)/python bench/rss.py
	$(BIN)/python bench/data_scope.py

clean:
	rm -rf $(VENV) instance .pytest_cache

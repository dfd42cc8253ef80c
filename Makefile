# livegate — run `make help` for the targets.
SHELL := /bin/bash
CARGO ?= cargo
LIVEGATE_BIN ?= $(CURDIR)/target/debug/livegate
E2E := tests/e2e
BROWSER := tests/browser
CHROMIUM ?= /usr/bin/chromium

.PHONY: help run build test test-unit test-e2e e2e-deps test-browser browser-deps lint fmt clean bench bench-deps bench-smoke deploy-check cluster cluster-smoke nginx-dep
DEPLOY_VENV := $(CURDIR)/.venv-deploy

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-13s %s\n", $$1, $$2}'

run: ## the gateway on the embedded engine (no Redis) with the targets REST API and the admin page at /, printing its URL and a dev token
	$(CARGO) run -p livegate-gateway --bin livegate -- serve --dev

build: ## build every crate
	$(CARGO) build --workspace

test: test-unit test-e2e test-browser deploy-check cluster-smoke bench-smoke ## unit tests, end-to-end tests against the real binary, the admin page in a browser, deploy/ validation, the local cluster, the benchmark tooling at tiny sizes

test-unit: ## unit and crate tests
	$(CARGO) test --workspace

e2e-deps: ## install the end-to-end test clients from the committed lock file
	cd $(E2E) && npm ci --no-audit --no-fund

test-e2e: build e2e-deps ## socket.io-client tests (node --test) against target/debug/livegate
	cd $(E2E) && LIVEGATE_BIN=$(LIVEGATE_BIN) npm test

browser-deps: ## install playwright-core for the browser test from the committed lock file
	cd $(BROWSER) && npm ci --no-audit --no-fund

test-browser: build e2e-deps browser-deps ## the admin page in headless Chromium (Debian's chromium at $(CHROMIUM)); screenshots in tests/browser/artifacts/
	cd $(BROWSER) && LIVEGATE_BIN=$(LIVEGATE_BIN) CHROMIUM_BIN=$(CHROMIUM) npm test

$(DEPLOY_VENV)/.installed: deploy/requirements.txt
	python3 -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/pip install --quiet --disable-pip-version-check -r deploy/requirements.txt
	touch $@

deploy-check: $(DEPLOY_VENV)/.installed ## lint deploy/Dockerfile (hadolint) and validate the rendered Kubernetes manifests (kubernetes-validate), offline
	PATH=$(DEPLOY_VENV)/bin:$$PATH deploy/check.sh

nginx-dep: # Debian's nginx for the local cluster, installed when missing
	@command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx; }

cluster: build nginx-dep ## a local 3-node cluster on loopback: redis-server, 3 nodes, nginx on :8090 (foreground, Ctrl-C stops)
	LIVEGATE_BIN=$(LIVEGATE_BIN) deploy/local/cluster.sh

cluster-smoke: build e2e-deps nginx-dep ## start the local cluster on free ports, one polling and one websocket client through nginx, publish, stop
	cd $(E2E) && LIVEGATE_BIN=$(LIVEGATE_BIN) node --test cluster/smoke.test.mjs

lint: ## formatting and clippy, warnings are errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## format the code
	$(CARGO) fmt --all

clean: ## remove build output
	$(CARGO) clean

bench-deps: ## install the Node.js benchmark peer from its committed lock file
	cd bench/peers/node-socketio && npm ci --no-audit --no-fund

bench: bench-deps ## benchmarks against the Node.js Socket.IO peer (about 30 min): bench/results/<date>.{json,md} and SVG plots
	$(CARGO) build --release -p livegate-gateway -p livegate-loadgen
	python3 bench/run.py

bench-smoke: build ## the benchmark tooling at tiny sizes (embedded engine, HTTP publish, under a minute); fails on any lost delivery
	python3 bench/run.py --smoke --bin-dir $(CURDIR)/target/debug

# livegate — run `make help` for the targets.
SHELL := /bin/bash
CARGO ?= cargo
LIVEGATE_BIN ?= $(CURDIR)/target/debug/livegate
E2E := tests/e2e
BROWSER := tests/browser
CHROMIUM ?= /usr/bin/chromium

.PHONY: help run build test test-unit test-e2e e2e-deps test-browser browser-deps lint fmt clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-13s %s\n", $$1, $$2}'

run: ## the gateway on the embedded engine (no Redis) with the targets REST API and the admin page at /, printing its URL and a dev token
	$(CARGO) run -p livegate-gateway --bin livegate -- serve --dev

build: ## build every crate
	$(CARGO) build --workspace

test: test-unit test-e2e test-browser ## unit tests, then end-to-end tests against the real binary, then the admin page in a browser

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

lint: ## formatting and clippy, warnings are errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## format the code
	$(CARGO) fmt --all

clean: ## remove build output
	$(CARGO) clean

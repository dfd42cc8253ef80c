# livegate — run `make help` for the targets.
SHELL := /bin/bash
CARGO ?= cargo
LIVEGATE_BIN ?= $(CURDIR)/target/debug/livegate
E2E := tests/e2e

.PHONY: help run build test test-unit test-e2e e2e-deps lint fmt clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

run: ## the gateway on the embedded engine (no Redis), printing its URL and a dev token
	$(CARGO) run -p livegate-gateway --bin livegate -- serve --dev

build: ## build every crate
	$(CARGO) build --workspace

test: test-unit test-e2e ## unit tests, then end-to-end tests against the real binary

test-unit: ## unit and crate tests
	$(CARGO) test --workspace

e2e-deps: ## install the end-to-end test clients from the committed lock file
	cd $(E2E) && npm ci --no-audit --no-fund

test-e2e: build e2e-deps ## socket.io-client tests (node --test) against target/debug/livegate
	cd $(E2E) && LIVEGATE_BIN=$(LIVEGATE_BIN) npm test

lint: ## formatting and clippy, warnings are errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## format the code
	$(CARGO) fmt --all

clean: ## remove build output
	$(CARGO) clean

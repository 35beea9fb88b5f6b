# pgproxy developer targets. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

MODULE    := github.com/pgproxy/pgproxy
BIN       := bin/pgproxy
COVERDIR  := $(CURDIR)/coverage
# Unit tests: every package except the end-to-end suites under tests/.
UNIT_PKGS  = $(shell go list ./... | grep -v '^$(MODULE)/tests/')
# Data-race detector for unit tests; `make test-unit RACE=` turns it off.
RACE      ?= -race
E2E_FLAGS ?= -count=1 -timeout 40m -v

.PHONY: help build test ensure-deps test-unit test-e2e bench lint coverage mutation demo clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/pgproxy
	go build -o $(BIN) ./cmd/pgproxy

test: ## ensure-deps, then unit and end-to-end tests (both always run); failures are listed last
	$(MAKE) ensure-deps
	status=0; $(MAKE) test-unit || status=1; $(MAKE) test-e2e || status=1; \
	if [ $$status != 0 ]; then echo "--- failed (from tmp/unit.log and tmp/e2e.log):"; \
		grep -h -E -- '^\s*--- FAIL|^FAIL|^panic:|_test\.go:[0-9]+:' tmp/unit.log | tail -40 || true; \
		grep -h -E -- '^\s*--- FAIL|^FAIL|^panic:' tmp/e2e.log | tail -40 || true; fi; \
	exit $$status

ensure-deps: ## install (as root) or report what the tests need
	hack/ensure-deps.sh

test-unit: ## go test of every package outside tests/
	mkdir -p tmp
	go test $(RACE) -count=1 -timeout 20m $(UNIT_PKGS) 2>&1 | tee tmp/unit.log

test-e2e: ## end-to-end suites under tests/ against real servers (verbose)
	mkdir -p tmp
	go test $(E2E_FLAGS) ./tests/... 2>&1 | tee tmp/e2e.log
	@echo "--- skipped end-to-end tests:"; grep -E -- '--- SKIP' tmp/e2e.log || echo "  none"

bench: ## pgbench: direct vs proxy vs PgBouncer, and (as root) the eBPF agent with and without acceleration
	hack/bench.sh
	@if [ "$$(id -u)" = 0 ]; then hack/bench-agent.sh; \
	else echo "bench: transparent path skipped: hack/bench-agent.sh needs root (cgroup and eBPF)"; fi

lint: ## go vet and staticcheck
	go vet ./...
	go tool staticcheck ./...

mutation: ## mutation testing of the masking rewrite (gremlins): fails under 75 % test efficacy
	go tool gremlins unleash --workers 2 --timeout-coefficient 10 --threshold-efficacy 75 \
		--exclude-files '_test\.go$$' ./userspace/masking

coverage: ## unit + end-to-end coverage (proxy binary built with -cover), merged report
	rm -rf $(COVERDIR)
	mkdir -p $(COVERDIR)/unit $(COVERDIR)/e2e $(COVERDIR)/merged
	status=0; \
	go test -count=1 -cover -covermode=set -coverpkg=$(MODULE)/... $(UNIT_PKGS) \
		-args -test.gocoverdir=$(COVERDIR)/unit || status=1; \
	GOCOVERDIR=$(COVERDIR)/e2e go test -count=1 -timeout 40m ./tests/... || status=1; \
	go tool covdata merge -i=$(COVERDIR)/unit,$(COVERDIR)/e2e -o $(COVERDIR)/merged; \
	go tool covdata textfmt -i=$(COVERDIR)/merged -o $(COVERDIR)/coverage.out; \
	go tool cover -func=$(COVERDIR)/coverage.out > $(COVERDIR)/coverage.txt; \
	echo "coverage report: $(COVERDIR)/coverage.txt (HTML: go tool cover -html=$(COVERDIR)/coverage.out)"; \
	tail -1 $(COVERDIR)/coverage.txt; \
	exit $$status

demo: ## PostgreSQL with sample data behind the proxy; Ctrl-C stops both
	hack/demo.sh

clean: ## remove build, coverage and test output
	rm -rf bin coverage tmp

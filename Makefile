# Wharf's tasks. `make help` lists them.
GO      ?= go
BIN     ?= bin/wharf
STATICCHECK_VERSION ?= v0.8.2
FUZZTIME ?= 3s

.PHONY: help build dev test test-windows fuzz lint bench check clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/wharf
	$(GO) build -o $(BIN) ./cmd/wharf

dev: build ## run the all-in-one dev cluster (NS + one PS)
	$(BIN) dev

test: ## set up test services (PostgreSQL, file-system tools, Wine) and run every test, the Windows ones under Wine too
	bash scripts/test-setup.sh
	@# -count=1: the e2e tests build and run the binary, which the test cache cannot see.
	@# The Windows tests run even when a Linux test failed; either failing fails make test.
	@# The fuzz tests run their seed corpus (and the inputs kept in testdata/fuzz) with go test, then a few seconds each of fuzzing.
	$(GO) test -count=1 -p 2 -timeout 20m ./...; linux=$$?; \
	GO=$(GO) FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh; fuzz=$$?; \
	GO=$(GO) bash scripts/test-windows.sh; windows=$$?; \
	if [ $$linux -ne 0 ]; then echo "make test: the Linux tests failed (see above)"; fi; \
	if [ $$fuzz -ne 0 ]; then echo "make test: a fuzz test failed (see above; its input is in testdata/fuzz)"; fi; \
	if [ $$windows -ne 0 ]; then echo "make test: the Windows tests failed (see above)"; fi; \
	[ $$linux -eq 0 ] && [ $$fuzz -eq 0 ] && [ $$windows -eq 0 ]

fuzz: ## run every fuzz test for FUZZTIME (default 3s) each
	GO=$(GO) FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

test-windows: ## run the Windows tests under Wine (prepared by scripts/test-setup.sh; reported skipped without Wine)
	GO=$(GO) bash scripts/test-windows.sh

lint: ## gofmt, go vet, staticcheck, and the Windows build
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	GOOS=windows $(GO) build ./...
	GOOS=windows $(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

bench: ## run the benchmarks; each prints a ratio against a reference measured in the same run
	bash scripts/bench.sh

check: lint test ## what CI runs

clean: ## remove build output
	rm -rf bin
